"""Open rasters with clear errors, read windows, write tiled GeoTIFF/COG outputs."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.shutil
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.io import DatasetReader, DatasetWriter
from rasterio.windows import Window

from landsight.errors import RasterError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def open_raster(path: str | Path) -> Iterator[DatasetReader]:
    """Open a raster for reading; a missing, unreadable or georeference-less file raises RasterError."""
    path_str = str(path)
    if "://" not in path_str and not path_str.startswith("/vsi") and not Path(path_str).exists():
        raise RasterError(f"raster not found: {path_str}; check the path")
    try:
        src = rasterio.open(path_str)
    except RasterioIOError as exc:
        raise RasterError(f"cannot open {path_str} as a raster ({exc}); "
                          "is it a GeoTIFF or another GDAL format?") from exc
    with src:
        if src.crs is None:
            raise RasterError(f"{path_str} has no CRS; assign one first, e.g. `rio edit-info --crs EPSG:XXXX`")
        yield src


def read_window(src: DatasetReader, window: Window, indexes: list[int] | None = None,
                boundless: bool = False, fill_value: float = 0) -> np.ndarray:
    """Read `window` (bands first); corrupt or truncated data raises RasterError naming the file and window.

    `fill_value` only applies to boundless reads: rasterio would otherwise also write it over nodata pixels.
    """
    try:
        if boundless:
            return src.read(indexes, window=window, boundless=True, fill_value=fill_value)
        return src.read(indexes, window=window)
    except RasterioError as exc:
        raise RasterError(f"cannot read {src.name} at {window!r}: {exc}; the file may be corrupt or truncated") from exc


def read_valid_mask(src: DatasetReader, window: Window, indexes: list[int] | None = None) -> np.ndarray:
    """Boolean (H, W) mask of valid pixels: False where every selected band is nodata (or masked)."""
    try:
        masks = src.read_masks(indexes, window=window)
    except RasterioError as exc:
        raise RasterError(f"cannot read {src.name} at {window!r}: {exc}; the file may be corrupt or truncated") from exc
    return np.asarray(masks.max(axis=0) > 0)


def check_readable(path: str | Path) -> None:
    """Read one pixel of every block row's first and last block to catch truncated files early (cheap)."""
    with open_raster(path) as src:
        h, w = src.height, src.width
        for row in (0, h // 2, h - 1):
            for col in (0, w - 1):
                read_window(src, Window(col, row, 1, 1))


def output_profile(src: DatasetReader, count: int, dtype: str, nodata: float | None,
                   blocksize: int = 256) -> dict[str, Any]:
    """A tiled, compressed GeoTIFF profile with `src`'s grid, CRS and transform."""
    profile: dict[str, Any] = {
        "driver": "GTiff", "width": src.width, "height": src.height, "count": count, "dtype": dtype,
        "crs": src.crs, "transform": src.transform, "nodata": nodata, "compress": "deflate",
        "BIGTIFF": "IF_SAFER",
    }
    if src.width >= blocksize and src.height >= blocksize:
        profile.update(tiled=True, blockxsize=blocksize, blockysize=blocksize)
    return profile


def create_raster(path: str | Path, profile: dict[str, Any]) -> DatasetWriter:
    """Open `path` for writing with `profile`; errors name the path."""
    try:
        return rasterio.open(str(path), "w", **profile)
    except RasterioError as exc:
        raise RasterError(f"cannot create {path}: {exc}") from exc


def to_cog(src_path: str | Path, dst_path: str | Path) -> None:
    """Copy a tiled GeoTIFF into a Cloud Optimized GeoTIFF (streams blocks; keeps tags and band descriptions)."""
    rasterio.shutil.copy(str(src_path), str(dst_path), driver="COG", compress="DEFLATE", blocksize=256,
                         overview_resampling="nearest", BIGTIFF="IF_SAFER")
