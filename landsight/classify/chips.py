"""Image chips in memory: the `ChipSet` every classification source produces, and reading/resizing single chips.

Pixel values stay raw (the sensor's units) until a model normalizes them; NaN marks nodata. No torch here.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landsight.errors import ConfigError, RasterError
from landsight.imagery.bands import BandSpec, BandUnits, band_spec_for, read_bands
from landsight.imagery.flips import flip_views as flip_views  # moved; still imported from here by classify/fit.py

IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2")
"""Chip files recognised in folders (read through GDAL, so any band count and dtype)."""


@dataclasses.dataclass(frozen=True)
class ChipImage:
    """One chip read from disk: (C, H, W) float32 values in physical units (NaN = nodata), its georeference if any,
    and the band spec it was read with (scales, offsets, units)."""

    data: np.ndarray
    names: tuple[str, ...]
    crs: str | None
    bounds: tuple[float, float, float, float] | None
    spec: BandSpec | None = None


@dataclasses.dataclass
class ChipSet:
    """Labelled chips, all of one size and band count.

    `images` (N, C, S, S) float32 raw values (NaN = nodata); `targets` (N, K) 0/1 per class (one 1 per row unless
    `multi_label`); `ids` name each chip (file path, or "raster.tif#col,row"); `boxes` (N, 4) left, bottom, right,
    top in each chip's `crs` (NaN rows where a chip has no georeference).
    """

    images: np.ndarray
    targets: np.ndarray
    classes: list[str]
    bands: BandSpec
    ids: list[str]
    boxes: np.ndarray
    crs: list[str | None]
    multi_label: bool = False
    source: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def chip_size(self) -> int:
        """Side of the (square) chips in pixels."""
        return int(self.images.shape[-1])

    @property
    def labels(self) -> np.ndarray:
        """(N,) class index of each chip (the first positive class for multi-label chips)."""
        return np.asarray(self.targets.argmax(axis=1), dtype=np.int64)

    @property
    def georeferenced(self) -> bool:
        """True when every chip has a CRS and bounds."""
        return bool(len(self) and all(c is not None for c in self.crs) and np.isfinite(self.boxes).all())

    def counts(self) -> dict[str, int]:
        """Chips per class."""
        return {name: int(n) for name, n in zip(self.classes, self.targets.sum(axis=0), strict=True)}

    def subset(self, index: Sequence[int] | np.ndarray) -> ChipSet:
        """The chips at `index`, in that order."""
        index = np.asarray(index, dtype=np.int64)
        return dataclasses.replace(self, images=self.images[index], targets=self.targets[index],
                                   ids=[self.ids[i] for i in index], boxes=self.boxes[index],
                                   crs=[self.crs[i] for i in index])


def read_chip(path: str | Path, indexes: Sequence[int] | None = None, given: BandUnits | None = None) -> ChipImage:
    """Read a chip file (GeoTIFF, PNG, JPEG... any band count) in physical units (scale and offset from `given`, else
    the file: see `band_spec_for`); unreadable files raise RasterError naming them."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                bands = list(indexes) if indexes else list(range(1, src.count + 1))
                if max(bands) > src.count:
                    raise RasterError(f"{path} has {src.count} band(s); band {max(bands)} was asked for")
                spec = band_spec_for(src, bands, given)
                data, _ = read_chip_window(src, Window(0, 0, src.width, src.height), spec)
                georef = src.crs is not None and not src.transform.is_identity
                crs = src.crs.to_string() if georef else None
                bounds = tuple(src.bounds) if georef else None
    except RasterioError as exc:
        raise RasterError(f"cannot read chip {path}: {exc}; remove the file or convert it to GeoTIFF/PNG") from exc
    return ChipImage(data, spec.names, crs, bounds, spec)


def read_chip_window(src: DatasetReader, window: Window, spec: BandSpec) -> tuple[np.ndarray, float]:
    """(C, H, W) float32 of `spec`'s bands of a raster window in physical units (`read_bands`) with NaN wherever that
    band is nodata (declared, or NaN/Inf; see `read_masked`), and the share of pixels valid in every band."""
    data, valid = read_bands(src, window, spec)
    return np.where(valid, data.astype(np.float32), np.float32(np.nan)), float(valid.all(axis=0).mean())


def _interp_matrix(size: int, length: int) -> np.ndarray:
    """(size, length) bilinear interpolation weights, pixel centres aligned (align_corners=False)."""
    pos = np.clip((np.arange(size) + 0.5) * length / size - 0.5, 0, length - 1)
    low = np.floor(pos).astype(int)
    high = np.minimum(low + 1, length - 1)
    frac = pos - low
    matrix = np.zeros((size, length), dtype=np.float64)
    matrix[np.arange(size), low] += 1 - frac
    matrix[np.arange(size), high] += frac
    return matrix


def _area_matrix(size: int, length: int) -> np.ndarray:
    """(size, length) box-filter weights for shrinking `length` px to `size` px (no aliasing)."""
    edges = np.arange(size + 1) * length / size
    matrix = np.zeros((size, length), dtype=np.float64)
    for i in range(size):
        for j in range(int(edges[i]), int(np.ceil(edges[i + 1]))):
            matrix[i, j] = min(edges[i + 1], j + 1) - max(edges[i], j)
    return matrix / matrix.sum(axis=1, keepdims=True)


def resize_chip(image: np.ndarray, size: int) -> np.ndarray:
    """Resize a (C, H, W) chip to (C, size, size): bilinear when enlarging, area-averaging when shrinking.

    Nodata (NaN) pixels take their band's mean first, so they do not spread; an all-NaN band stays NaN.
    """
    _c, h, w = image.shape
    if (h, w) == (size, size):
        return image.astype(np.float32, copy=False)
    data = image.astype(np.float64)
    if np.isnan(data).any():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            means = np.nanmean(data, axis=(1, 2), keepdims=True)
        data = np.where(np.isnan(data), means, data)
    rows = _interp_matrix(size, h) if size >= h else _area_matrix(size, h)
    cols = _interp_matrix(size, w) if size >= w else _area_matrix(size, w)
    return np.einsum("ih,chw,jw->cij", rows, data, cols).astype(np.float32)


def tile_chip(image: np.ndarray, size: int) -> list[np.ndarray]:
    """Cut a (C, H, W) image larger than `size` into `size` x `size` tiles covering it (the last ones shifted back to
    stay inside); a side smaller than `size` is resized up first."""
    h, w = image.shape[1:]
    if h < size or w < size:
        image = resize_chip(image, size) if h < size and w < size else _pad_short_side(image, size)
        h, w = image.shape[1:]

    def starts(n: int) -> list[int]:
        return sorted({*range(0, n - size, size), n - size})

    return [image[:, r:r + size, col:col + size] for r in starts(h) for col in starts(w)]


def _pad_short_side(image: np.ndarray, size: int) -> np.ndarray:
    h, w = image.shape[1:]
    return np.pad(image, ((0, 0), (0, max(0, size - h)), (0, max(0, size - w))), mode="edge")


def fit_to_chip(image: np.ndarray, size: int, max_scale: float = 2.0) -> list[np.ndarray]:
    """A model input for any (C, H, W) image: one chip resized to `size` when the image is at most `max_scale` times
    the chip size on each side, else tiles of `size` px (a decision per tile, combined by the caller)."""
    if image.ndim != 3:
        raise ConfigError(f"images must be (bands, height, width) arrays; got shape {image.shape}")
    if max(image.shape[1:]) <= max_scale * size:
        return [resize_chip(image, size)]
    return tile_chip(image, size)
