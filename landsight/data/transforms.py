"""Augmentation for any band count with albumentations (images are normalized float32, H x W x C), with or without a
mask: the same transforms for segmentation chips and classifier chips."""

from __future__ import annotations

import albumentations as A
import numpy as np

from landsight.labels.classes import IGNORE_VALUE


def geometric_augmentation() -> A.Compose:
    """Flips, 90-degree rotations and a mild affine (rotation, shear, scale); new pixels are ignored in the mask."""
    return A.Compose([
        A.HorizontalFlip(p=0.5),
        A.VerticalFlip(p=0.5),
        A.RandomRotate90(p=0.5),
        A.Affine(scale=(0.85, 1.15), rotate=(-20, 20), shear=(-8, 8), fill=0, fill_mask=IGNORE_VALUE, p=0.5),
    ])


def chip_symmetries() -> A.Compose:
    """Flips left-right and up-down and a transpose, each with p=0.5: the eight orientations of a chip, equally
    likely (overhead imagery has no "up")."""
    return A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5), A.Transpose(p=0.5)])


def jitter_brightness_contrast(image: np.ndarray, rng: np.random.Generator, strength: float = 0.2) -> np.ndarray:
    """Random contrast (scale) and brightness (offset) in normalized units, the same for all bands.

    Done here rather than with albumentations, which clips float images to [0, 1] and would destroy normalized
    multispectral values.
    """
    contrast = 1.0 + rng.uniform(-strength, strength)
    brightness = rng.uniform(-strength, strength)
    return (image * contrast + brightness).astype(np.float32)


class Augment:
    """Callable (image HWC float32, mask HW uint8 or None, rng) -> augmented pair, seeded by the caller's rng.

    `segmentation()`: flips, rotations, a mild affine and brightness/contrast jitter. `chips()`: the chip symmetries
    only, so a classifier keeps every pixel and the absolute brightness that tells a cloud from a roof.
    """

    def __init__(self, transforms: A.Compose, jitter: bool) -> None:
        self.transforms = transforms
        self.jitter = jitter

    @classmethod
    def segmentation(cls) -> Augment:
        """The augmentation of segmentation training chips."""
        return cls(geometric_augmentation(), jitter=True)

    @classmethod
    def chips(cls) -> Augment:
        """The augmentation of classifier training chips."""
        return cls(chip_symmetries(), jitter=False)

    def __call__(self, image: np.ndarray, mask: np.ndarray | None,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray | None]:
        self.transforms.set_random_seed(int(rng.integers(2**31)))
        out = self.transforms(image=image) if mask is None else self.transforms(image=image, mask=mask)
        image = jitter_brightness_contrast(out["image"], rng) if self.jitter else out["image"]
        return image, out.get("mask")
