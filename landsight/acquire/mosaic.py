"""A folder of georeferenced tiles -> one GeoTIFF; back onto the source raster's grid when the folder records it."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import rasterio.merge
import rasterio.windows
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError
from rasterio.warp import Resampling, reproject

from landsight.acquire.errors import CoverError
from landsight.imagery.io import create_raster
from landsight.outputs import atomic_path, check_output

log = logging.getLogger(__name__)

GRID_NAME = "source-grid.json"
"""File in a tile folder written by `landsight tile`: the source raster's grid, which `mosaic` restores."""
TILE_SUFFIXES = (".tif", ".tiff", ".png", ".jpg", ".jpeg")


def tile_files(folder: str | Path) -> list[Path]:
    """The tile images under `folder` (any depth; hidden and temporary files left out), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CoverError(f"tile folder not found: {folder}; pass a folder made by `landsight tile` or `download`")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in TILE_SUFFIXES and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not files:
        raise CoverError(f"{folder} holds no tile images ({', '.join(TILE_SUFFIXES)})")
    return files


def mosaic_folder(folder: str | Path, output: str | Path, overwrite: bool = False,
                  resampling: Resampling = Resampling.bilinear) -> dict[str, Any]:
    """Merge the tiles under `folder` into a deflate GeoTIFF at `output`; returns its size, CRS and bounds.

    With a `source-grid.json` (from `landsight tile`) the mosaic is resampled back onto that grid: same CRS,
    transform, size, data type and nodata as the tiled raster.
    """
    check_output(output, overwrite)
    files = tile_files(_finest_zoom(Path(folder)))
    data, transform, crs, nodata, mask = _merge(files)
    grid_file = Path(folder) / GRID_NAME
    if grid_file.is_file():
        data, transform, crs, nodata, mask = _onto_grid(json.loads(grid_file.read_text()), data, transform, crs,
                                                        nodata, mask, resampling)
    profile = {"driver": "GTiff", "width": data.shape[2], "height": data.shape[1], "count": data.shape[0],
               "dtype": data.dtype.name, "crs": crs, "transform": transform, "nodata": nodata, "compress": "deflate",
               "BIGTIFF": "IF_SAFER"}
    if data.shape[1] >= 256 and data.shape[2] >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    with atomic_path(output, overwrite) as tmp, create_raster(tmp, profile) as dst:
        dst.write(data)
        if mask is not None and nodata is None:
            dst.write_mask(mask.astype(np.uint8) * 255)
    return {"tiles": len(files), "width": data.shape[2], "height": data.shape[1], "crs": crs.to_string(),
            "transform": list(transform)[:6]}


def _finest_zoom(folder: Path) -> Path:
    """The highest zoom's subfolder of an XYZ pyramid (z/x/y); `folder` itself otherwise."""
    zooms = [int(p.name) for p in folder.iterdir() if p.is_dir() and p.name.isdigit()] if folder.is_dir() else []
    return folder / str(max(zooms)) if len(zooms) > 1 else folder


def _merge(files: list[Path]) -> tuple[np.ndarray, Affine, CRS, float | None, np.ndarray | None]:
    """Merged pixels, their transform, CRS, nodata and (without nodata) where any tile had valid pixels."""
    with contextlib.ExitStack() as stack:
        try:
            sources = [stack.enter_context(rasterio.open(p)) for p in files]
        except RasterioError as exc:
            raise CoverError(f"cannot read a tile: {exc}; remove or re-download it") from exc
        first = sources[0]
        for src in sources:
            if src.crs is None or src.crs != first.crs or src.count != first.count:
                raise CoverError(f"tile {src.name} has CRS {src.crs} and {src.count} band(s), unlike {first.name} "
                                 f"({first.crs}, {first.count}); mosaic tiles of one download or tiling at a time")
        nodata = first.nodata
        data, transform = rasterio.merge.merge(sources, nodata=nodata)
        mask = None
        if nodata is None:
            mask = _coverage(sources, transform, data.shape[1:])
        return data, transform, first.crs, nodata, mask


def _coverage(sources: list[Any], transform: Affine, shape: tuple[int, int]) -> np.ndarray:
    """Where the tiles' valid pixels (their GDAL masks) fall on the mosaic grid."""
    covered = np.zeros(shape, dtype=bool)
    for src in sources:
        window = rasterio.windows.from_bounds(*src.bounds, transform=transform).round_offsets().round_lengths()
        row, col = int(window.row_off), int(window.col_off)
        valid = src.dataset_mask() > 0
        h, w = min(valid.shape[0], shape[0] - row), min(valid.shape[1], shape[1] - col)
        covered[row:row + h, col:col + w] |= valid[:h, :w]
    return covered


def _onto_grid(grid: dict[str, Any], data: np.ndarray, transform: Affine, crs: CRS, nodata: float | None,
               mask: np.ndarray | None, resampling: Resampling
               ) -> tuple[np.ndarray, Affine, CRS, float | None, np.ndarray | None]:
    """`data` resampled onto the grid recorded by `landsight tile` (its nodata kept, masked pixels as nodata)."""
    dst_crs, dst_transform = CRS.from_user_input(grid["crs"]), Affine(*grid["transform"][:6])
    dst_nodata = grid.get("nodata")
    out = np.zeros((data.shape[0], grid["height"], grid["width"]), dtype=grid["dtype"])
    src_nodata = nodata
    if mask is not None:  # tiles without nodata: carry the mask along as its own band
        covered = np.zeros((grid["height"], grid["width"]), dtype=np.uint8)
        reproject(mask.astype(np.uint8), covered, src_transform=transform, src_crs=crs, dst_transform=dst_transform,
                  dst_crs=dst_crs, resampling=Resampling.nearest)
        mask = covered > 0
    reproject(data, out, src_transform=transform, src_crs=crs, src_nodata=src_nodata, dst_transform=dst_transform,
              dst_crs=dst_crs, dst_nodata=dst_nodata if dst_nodata is not None else src_nodata,
              resampling=resampling)
    return out, dst_transform, dst_crs, dst_nodata, mask
