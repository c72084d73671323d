"""The chip datasets of both tasks. Samples are {"image": float32 (C, H, W) normalized, "target": ...}: a mask
(H, W) for segmentation, read from rasters window by window (nothing is loaded whole), or 0/1 class targets (K,)
for classifier chips held in memory. Both augment with albumentations (`landsight.data.transforms`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import rasterio
import torch
from rasterio.io import DatasetReader
from rasterio.windows import Window
from torch.utils.data import Dataset

from landsight.data.transforms import Augment, orient
from landsight.imagery.bands import BandSpec, Normalization, read_bands
from landsight.imagery.io import read_window
from landsight.labels.classes import IGNORE_VALUE


@dataclasses.dataclass(frozen=True)
class RasterPair:
    """An image and its label mask (class values, IGNORE_VALUE where unlabelled), aligned pixel for pixel;
    `val_mask`, when validation holds out whole polygons, holds only theirs (and `mask` only the others)."""

    image: str
    mask: str
    val_mask: str | None = None


class ChipDataset(Dataset[dict[str, torch.Tensor]]):
    """Segmentation samples: "target" is int64 (H, W) channel indices or IGNORE_VALUE.

    Nodata pixels (see `read_masked`) and NaN/Inf values are 0 in the image; nodata pixels' labels are ignored.

    `chips` are (pair index, window). Files are opened lazily once per worker process.
    """

    def __init__(self, pairs: Sequence[RasterPair], chips: Sequence[tuple[int, Window]], bands: BandSpec,
                 normalization: Normalization, index_lut: np.ndarray, augment: Augment | None = None,
                 seed: int = 0) -> None:
        self.pairs = list(pairs)
        self.chips = list(chips)
        self.bands = bands
        self.normalization = normalization
        self.index_lut = index_lut
        self.augment = augment
        self.seed = seed
        self._handles: dict[str, DatasetReader] = {}

    def __len__(self) -> int:
        return len(self.chips)

    def _open(self, path: str) -> DatasetReader:
        if path not in self._handles:
            self._handles[path] = rasterio.open(path)
        return self._handles[path]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        pair_index, window = self.chips[i]
        pair = self.pairs[pair_index]
        src = self._open(pair.image)
        data, valid = read_bands(src, window, self.bands)
        pixels = np.asarray(valid.any(axis=0))
        image = self.normalization.apply(data, pixels)
        mask = self.index_lut[read_window(self._open(pair.mask), window, [1])[0]]
        mask = np.where(pixels, mask, IGNORE_VALUE).astype(np.uint8)
        if self.augment is not None:
            rng = np.random.default_rng((self.seed, i))
            hwc, mask = self.augment(np.ascontiguousarray(image.transpose(1, 2, 0)), mask, rng)
            image = hwc.transpose(2, 0, 1)
        return {"image": torch.from_numpy(np.ascontiguousarray(image)),
                "target": torch.from_numpy(mask.astype(np.int64))}


class ArrayChipDataset(Dataset[dict[str, torch.Tensor]]):
    """Classifier samples from normalized chips in memory: "target" is float32 (K,) 0/1 per class (one 1 unless the
    chips are multi-label). `orientations` (N, 3) bool, when given, says which `CHIP_SYMMETRIES` turn each chip."""

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, orientations: torch.Tensor | None = None) -> None:
        self.images, self.targets, self.orientations = images, targets, orientations

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        image = self.images[i]
        if self.orientations is not None and bool(self.orientations[i].any()):
            hwc = orient(np.ascontiguousarray(image.numpy().transpose(1, 2, 0)), self.orientations[i].tolist())
            image = torch.from_numpy(np.ascontiguousarray(hwc.transpose(2, 0, 1)))
        return {"image": image, "target": self.targets[i]}
