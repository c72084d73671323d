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
from rasterio.enums import Resampling
from rasterio.errors import RasterioError, RasterioIOError
from rasterio.io import DatasetReader, DatasetWriter
from rasterio.vrt import WarpedVRT
from rasterio.windows import Window

from landsight.errors import OutputError, RasterError
from landsight.outputs import output_errors

log = logging.getLogger(__name__)

GDAL_CACHE_MB = 128
"""GDAL block cache in MB for commands that stream a whole raster: bounded so memory does not grow with the raster
(GDAL's default is 5 % of RAM, and every block read or written stays cached)."""


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


def read_padded(src: DatasetReader | WarpedVRT, window: Window, halo: int,
                indexes: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(data, valid) of `window` grown by `halo` px on each side: (C, H + 2 halo, W + 2 halo) data and its (H', W')
    valid mask (`read_valid_mask`); pixels outside the raster are 0 and invalid."""
    col0, row0 = int(window.col_off) - halo, int(window.row_off) - halo
    width, height = int(window.width) + 2 * halo, int(window.height) + 2 * halo
    c0, r0 = max(col0, 0), max(row0, 0)
    c1, r1 = min(col0 + width, src.width), min(row0 + height, src.height)
    count = len(indexes) if indexes else src.count
    data = np.zeros((count, height, width), dtype=src.dtypes[0])
    valid = np.zeros((height, width), dtype=bool)
    if c1 > c0 and r1 > r0:
        inner = Window(c0, r0, c1 - c0, r1 - r0)
        rows, cols = slice(r0 - row0, r1 - row0), slice(c0 - col0, c1 - col0)
        data[:, rows, cols] = read_window(src, inner, indexes)
        valid[rows, cols] = read_valid_mask(src, inner, indexes)
    return data, valid


@contextlib.contextmanager
def aligned(src: DatasetReader, ref: DatasetReader, resampling: Resampling) -> Iterator[DatasetReader | WarpedVRT]:
    """`src` on `ref`'s grid (CRS, transform, size): itself when the grids match, else a warped view."""
    if (src.crs, src.transform, src.shape) == (ref.crs, ref.transform, ref.shape):
        yield src
        return
    log.info("%s is on another grid; warping it onto %s's grid", src.name, ref.name)
    with WarpedVRT(src, crs=ref.crs, transform=ref.transform, width=ref.width, height=ref.height,
                   resampling=resampling) as vrt:
        yield vrt


def read_masked(src: DatasetReader, window: Window, indexes: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`window`'s (C, H, W) data as read and, alike, where each value is valid: not nodata in its band (declared
    nodata value, alpha band or internal mask) and finite. NaN and +/-Inf are nodata in float rasters, declared or not.
    """
    data = read_window(src, window, indexes)
    valid = _read_masks(src, window, indexes)
    if data.dtype.kind == "f":
        valid &= np.isfinite(data)
    return data, valid


def read_valid_mask(src: DatasetReader, window: Window, indexes: list[int] | None = None) -> np.ndarray:
    """Boolean (H, W) mask of valid pixels: False where every selected band is nodata (see `read_masked`)."""
    chosen = indexes or range(1, src.count + 1)
    if all(np.dtype(src.dtypes[i - 1]).kind != "f" for i in chosen):  # no NaN/Inf possible: the masks suffice
        return np.asarray(_read_masks(src, window, indexes).any(axis=0))
    return np.asarray(read_masked(src, window, indexes)[1].any(axis=0))


def _read_masks(src: DatasetReader, window: Window, indexes: list[int] | None) -> np.ndarray:
    """(C, H, W) boolean GDAL masks (declared nodata, alpha band, internal mask) of the selected bands."""
    try:
        return np.asarray(src.read_masks(indexes, window=window) > 0)
    except RasterioError as exc:
        raise RasterError(f"cannot read {src.name} at {window!r}: {exc}; the file may be corrupt or truncated") from exc


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


@contextlib.contextmanager
def create_raster(path: str | Path, profile: dict[str, Any]) -> Iterator[DatasetWriter]:
    """Open `path` for writing with `profile`; on leaving the block, close it and `verify_raster` the result.

    GDAL reports some write failures (a full disk while flushing at close) only as log messages: the re-read catches
    them. Every failure raises OutputError naming the path.
    """
    try:
        dst = rasterio.open(str(path), "w", **profile)
    except RasterioError as exc:
        raise OutputError(f"cannot create {path}: {exc}; check that the folder is writable and has free space") from exc
    try:
        with output_errors(path), dst:
            yield dst
    except RasterioError as exc:
        raise OutputError(f"cannot write {path}: {exc}; the disk may be full or the folder read-only") from exc
    verify_raster(path, profile)


def verify_raster(path: str | Path, profile: dict[str, Any] | None = None) -> None:
    """Re-open a written raster and decode every block; raise OutputError if it is incomplete or unlike `profile`."""
    try:
        with rasterio.open(str(path)) as src:
            if profile is not None:
                expected = (profile["width"], profile["height"], profile["count"], np.dtype(profile["dtype"]))
                found = (src.width, src.height, src.count, np.dtype(src.dtypes[0]))
                if found != expected:
                    raise OutputError(f"{path} was written as (width, height, bands, dtype) {found}, not {expected}")
            for _, window in src.block_windows(1):
                src.read(window=window)
    except RasterioError as exc:
        raise OutputError(f"{path} is incomplete after writing ({exc}); the disk may be full: free space and "
                          "run again") from exc


def to_cog(src_path: str | Path, dst_path: str | Path) -> None:
    """Copy a tiled GeoTIFF into a Cloud Optimized GeoTIFF (streams blocks; keeps tags and band descriptions)."""
    try:
        with output_errors(dst_path):
            rasterio.shutil.copy(str(src_path), str(dst_path), driver="COG", compress="DEFLATE", blocksize=256,
                                 overview_resampling="nearest", BIGTIFF="IF_SAFER")
    except RasterioError as exc:
        raise OutputError(f"cannot write {dst_path}: {exc}; the disk may be full or the folder read-only") from exc
    verify_raster(dst_path)
