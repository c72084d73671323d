"""A raster -> XYZ GeoTIFF tiles (z/x/y.tif in EPSG:3857) at one or more zooms: any band count and data type,
nodata kept (or, without nodata, an internal mask); tiles without a valid pixel are left out."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import mercantile
import numpy as np
import rasterio
from rasterio.transform import from_bounds
from rasterio.warp import Resampling, reproject

from landsight.acquire.area import area_from_raster
from landsight.acquire.cover import WEB_MERCATOR, check_zoom, xyz_cover
from landsight.acquire.errors import AreaError
from landsight.acquire.mosaic import GRID_NAME
from landsight.acquire.tilefiles import tile_path, write_geotiff
from landsight.imagery.io import open_raster
from landsight.outputs import atomic_path

log = logging.getLogger(__name__)


def parse_zooms(text: str) -> list[int]:
    """"Z" or "MIN-MAX" -> the zoom levels, each checked (0..24)."""
    try:
        low, _, high = text.partition("-")
        zooms = list(range(int(low), int(high or low) + 1))
    except ValueError as exc:
        raise AreaError(f"`zoom` {text!r} is not a zoom or a range such as 14-16") from exc
    if not zooms:
        raise AreaError(f"`zoom` {text!r} is an empty range; pass MIN-MAX with MIN <= MAX")
    return [check_zoom(z) for z in zooms]


def tile_raster(raster: str | Path, zooms: list[int], output: str | Path, overwrite: bool = False,
                resampling: Resampling = Resampling.bilinear, size: int = 256) -> dict[str, Any]:
    """Write the XYZ tiles of `raster` at `zooms` into the folder `output` (all or nothing); returns counts."""
    area = area_from_raster(raster)
    covers = {z: xyz_cover(area, z) for z in zooms}
    written: dict[int, int] = {}
    with open_raster(raster) as src, atomic_path(output, overwrite, directory=True) as folder:
        (folder / GRID_NAME).write_text(json.dumps(_grid(src)) + "\n")
        mask = src.dataset_mask()
        for zoom, tiles in covers.items():
            written[zoom] = sum(_write_tile(src, mask, tile, folder, resampling, size) for tile in tiles)
    log.info("wrote %s tiles into %s", written, output)
    return {"tiles": written, "bands": src.count, "dtype": src.dtypes[0]}


def _grid(src: rasterio.io.DatasetReader) -> dict[str, Any]:
    """The source grid `landsight mosaic` restores."""
    return {"crs": src.crs.to_wkt(), "transform": list(src.transform)[:6], "width": src.width, "height": src.height,
            "dtype": src.dtypes[0], "nodata": src.nodata, "count": src.count}


def _write_tile(src: rasterio.io.DatasetReader, mask: np.ndarray, tile: mercantile.Tile, folder: Path,
                resampling: Resampling, size: int) -> bool:
    """Warp one tile (`mask`: the source's valid pixels); write it if any pixel is valid. Returns whether it was."""
    b = mercantile.xy_bounds(tile)
    transform = from_bounds(b.left, b.bottom, b.right, b.top, size, size)
    data = np.full((src.count, size, size), src.nodata if src.nodata is not None else 0, dtype=src.dtypes[0])
    reproject(rasterio.band(src, list(range(1, src.count + 1))), data, dst_transform=transform,
              dst_crs=WEB_MERCATOR, src_nodata=src.nodata, dst_nodata=src.nodata, resampling=resampling)
    alpha = np.zeros((size, size), dtype=np.uint8)
    reproject(mask, alpha, src_transform=src.transform, src_crs=src.crs, dst_transform=transform,
              dst_crs=WEB_MERCATOR, resampling=Resampling.nearest)
    valid = alpha > 0
    if not valid.any():
        return False
    if src.nodata is not None:
        data = np.where(valid, data, src.nodata).astype(data.dtype)
    write_geotiff(tile_path(folder, tile, "tif"), data, WEB_MERCATOR, transform, src.nodata,
                  mask=None if src.nodata is not None else valid)
    return True
