"""Georeferenced tile files: a GeoTIFF with CRS and transform, or a PNG/JPEG kept byte for byte with a world file
and a .aux.xml carrying its CRS. Every file is written atomically; the image itself lands last, so an image on
disk means a complete tile."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds

from landsight.acquire.cover import Cell, cell_bounds, cell_parts
from landsight.imagery.io import create_raster
from landsight.outputs import atomic_path

EXTENSIONS = {"tif": ".tif", "png": ".png", "jpeg": ".jpg"}
_DRIVERS = {"tif": "GTiff", "png": "PNG", "jpeg": "JPEG"}
_WORLD = {".png": ".pgw", ".jpg": ".jgw"}


def tile_path(folder: Path, cell: Cell, fmt: str) -> Path:
    """Where `cell` is stored under `folder`: z/x/y.ext (or epsg-size/x/y.ext for grid cells)."""
    top, middle, stem = cell_parts(cell)
    return folder / top / middle / f"{stem}{EXTENSIONS[fmt]}"


def cell_transform(cell: Cell, width: int, height: int) -> tuple[CRS, Affine]:
    """CRS and affine transform of a `width` x `height` image covering `cell` exactly."""
    crs, bounds = cell_bounds(cell)
    return crs, from_bounds(*bounds, width, height)


def save_tile(path: Path, cell: Cell, fmt: str, body: bytes, pixels: np.ndarray, body_driver: str) -> None:
    """Store a downloaded tile at `path` in `fmt`, georeferenced; `body` is kept as is when it already is `fmt`."""
    crs, transform = cell_transform(cell, pixels.shape[2], pixels.shape[1])
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "tif":
        write_geotiff(path, pixels, crs, transform)
        return
    if body_driver != _DRIVERS[fmt]:
        body = encode(pixels, _DRIVERS[fmt])
    write_sidecars(path, crs, transform)
    with atomic_path(path, overwrite=True) as tmp:
        tmp.write_bytes(body)


def write_geotiff(path: Path, pixels: np.ndarray, crs: CRS, transform: Affine, nodata: float | None = None,
                  mask: np.ndarray | None = None) -> None:
    """Write (bands, rows, cols) `pixels` as a deflate GeoTIFF atomically (with an internal `mask` if given)."""
    profile = {"driver": "GTiff", "width": pixels.shape[2], "height": pixels.shape[1], "count": pixels.shape[0],
               "dtype": pixels.dtype.name, "crs": crs, "transform": transform, "nodata": nodata,
               "compress": "deflate"}
    if pixels.shape[1] % 16 == 0 and pixels.shape[2] % 16 == 0:
        profile.update(tiled=True, blockxsize=min(256, pixels.shape[2]), blockysize=min(256, pixels.shape[1]))
    with atomic_path(path, overwrite=True) as tmp, rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True):
        with create_raster(tmp, profile) as dst:
            dst.write(pixels)
            if mask is not None:
                dst.write_mask(mask.astype(np.uint8) * 255)


def encode(pixels: np.ndarray, driver: str) -> bytes:
    """`pixels` encoded as a `driver` (PNG, JPEG) file in memory."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with MemoryFile() as memfile:
            with memfile.open(driver=driver, width=pixels.shape[2], height=pixels.shape[1], count=pixels.shape[0],
                              dtype=pixels.dtype.name) as dst:
                dst.write(pixels)
            return bytes(memfile.read())


def write_sidecars(path: Path, crs: CRS, transform: Affine) -> None:
    """A world file (pixel-centre convention) and a GDAL .aux.xml with the CRS beside image `path`."""
    a, b, c, d, e, f = transform.a, transform.b, transform.c, transform.d, transform.e, transform.f
    centre_x, centre_y = c + a / 2 + b / 2, f + d / 2 + e / 2
    world = "\n".join(repr(v) for v in (a, d, b, e, centre_x, centre_y)) + "\n"
    with atomic_path(path.with_suffix(_WORLD[path.suffix]), overwrite=True) as tmp:
        tmp.write_text(world)
    aux = f"<PAMDataset>\n  <SRS>{_escape(crs.to_wkt())}</SRS>\n</PAMDataset>\n"
    with atomic_path(path.with_name(path.name + ".aux.xml"), overwrite=True) as tmp:
        tmp.write_text(aux)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
