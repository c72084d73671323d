"""Augmentation with albumentations for any band count (images are normalized float32, H x W x C): random
geometry and jitter for segmentation chips with their masks; the eight orientations for classifier chips, whose
brightness carries the class."""

from __future__ import annotations

from collections.abc import Sequence

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


CHIP_SYMMETRIES = (A.HorizontalFlip(p=1.0), A.VerticalFlip(p=1.0), A.Transpose(p=1.0))
"""Flip left-right, flip up-down, transpose: applied or not, in this order, they give the eight orientations of a
chip (overhead imagery has no "up")."""


def orient(image: np.ndarray, choice: Sequence[bool]) -> np.ndarray:
    """An H x W x C image with each of `CHIP_SYMMETRIES` applied where `choice` (three booleans) says so."""
    for transform, apply in zip(CHIP_SYMMETRIES, choice, strict=True):
        if apply:
            image = transform(image=image)["image"]
    return image


def jitter_brightness_contrast(image: np.ndarray, rng: np.random.Generator, strength: float = 0.2) -> np.ndarray:
    """Random contrast (scale) and brightness (offset) in normalized units, the same for all bands.

    Done here rather than with albumentations, which clips float images to [0, 1] and would destroy normalized
    multispectral values.
    """
    contrast = 1.0 + rng.uniform(-strength, strength)
    brightness = rng.uniform(-strength, strength)
    return (image * contrast + brightness).astype(np.float32)


class Augment:
    """Segmentation chips: callable (image HWC float32, mask HW uint8, rng) -> augmented pair (flips, rotations, a
    mild affine, brightness/contrast jitter), seeded by the caller's rng."""

    def __init__(self) -> None:
        self.geometric = geometric_augmentation()

    def __call__(self, image: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        self.geometric.set_random_seed(int(rng.integers(2**31)))
        out = self.geometric(image=image, mask=mask)
        return jitter_brightness_contrast(out["image"], rng), out["mask"]
