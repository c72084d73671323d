"""Rasters -> small Web Mercator PNG overlays for the review map (read through a warped, decimated view)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
from affine import Affine
from matplotlib.image import imsave
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.vrt import WarpedVRT
from rasterio.warp import calculate_default_transform
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from landsight.errors import RasterError
from landsight.imagery.io import open_raster, read_masked, read_valid_mask, read_window

log = logging.getLogger(__name__)

WEB_MERCATOR = CRS.from_epsg(3857)
LatLngBounds = tuple[tuple[float, float], tuple[float, float]]
"""((south, west), (north, east)) in degrees, as Leaflet takes them."""

ForegroundFn = Callable[[DatasetReader, Window], tuple[np.ndarray, np.ndarray]]


@contextlib.contextmanager
def mercator_view(path: str | Path, max_size: int, resampling: Resampling) -> Iterator[WarpedVRT]:
    """A Web Mercator view of the raster at most `max_size` px on its longer side (GDAL warps on read)."""
    with open_raster(path) as src:
        transform, width, height = calculate_default_transform(src.crs, WEB_MERCATOR, src.width, src.height,
                                                               *src.bounds)
        scale = max(1.0, max(width, height) / max_size)
        width, height = max(1, round(width / scale)), max(1, round(height / scale))
        transform = transform @ Affine.scale(scale)
        with WarpedVRT(src, crs=WEB_MERCATOR, transform=transform, width=width, height=height,
                       resampling=resampling) as vrt:
            yield vrt


def latlng_bounds(vrt: WarpedVRT) -> LatLngBounds:
    """Leaflet bounds of a Web Mercator view."""
    left, bottom, right, top = vrt.bounds
    (west, east), (south, north) = warp_transform(WEB_MERCATOR, CRS.from_epsg(4326), [left, right], [bottom, top])
    return (south, west), (north, east)


def stretch(band: np.ndarray, valid: np.ndarray, low: float = 2, high: float = 98) -> np.ndarray:
    """Linear percentile stretch of one band to uint8 over its valid pixels."""
    values = band[valid]
    if values.size == 0:
        return np.zeros(band.shape, dtype=np.uint8)
    lo, hi = np.percentile(values, [low, high])
    scaled = (np.where(valid, band, lo).astype(np.float64) - lo) / max(hi - lo, 1e-12)
    return np.asarray(np.clip(scaled, 0, 1) * 255, dtype=np.uint8)


def render_image(path: str | Path, out_png: str | Path, bands: Sequence[int] | None = None,
                 max_size: int = 2048) -> LatLngBounds:
    """Write a stretched RGB (or grey) PNG of `bands` (1-based; default 1-3, or 1) and return its bounds."""
    with mercator_view(path, max_size, Resampling.bilinear) as vrt:
        chosen = list(bands) if bands else ([1, 2, 3] if vrt.count >= 3 else [1])
        if max(chosen) > vrt.count:
            raise RasterError(f"band {max(chosen)} asked for the overlay but {path} has {vrt.count} band(s)")
        window = Window(0, 0, vrt.width, vrt.height)
        data, valid = read_masked(vrt, window, chosen)
        rgb = [stretch(b, v) for b, v in zip(data, valid, strict=True)]
        alpha = np.where(valid.any(axis=0), 255, 0).astype(np.uint8)
        rgba = np.dstack([*(rgb * 3 if len(rgb) == 1 else rgb), alpha])
        imsave(str(out_png), rgba)
        return latlng_bounds(vrt)


def render_mask(path: str | Path, out_png: str | Path, foreground: ForegroundFn, color: str,
                max_size: int = 2048) -> LatLngBounds:
    """Write a PNG where `foreground(view, window)` is True in `color`, transparent elsewhere."""
    with mercator_view(path, max_size, Resampling.nearest) as vrt:
        fg, _ = foreground(vrt, Window(0, 0, vrt.width, vrt.height))
        rgb = [int(color.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4)]
        rgba = np.zeros((*fg.shape, 4), dtype=np.uint8)
        rgba[fg] = [*rgb, 200]
        imsave(str(out_png), rgba)
        return latlng_bounds(vrt)


def render_palette(path: str | Path, out_png: str | Path, colormap: dict[int, tuple[int, int, int, int]],
                   max_size: int = 2048) -> LatLngBounds:
    """Write a class raster as a PNG coloured by `colormap` {value: (r, g, b, a)}; other values transparent."""
    with mercator_view(path, max_size, Resampling.nearest) as vrt:
        window = Window(0, 0, vrt.width, vrt.height)
        values = read_window(vrt, window, [1])[0]
        valid = read_valid_mask(vrt, window, [1])
        lut = np.zeros((256, 4), dtype=np.uint8)
        for value, rgba in colormap.items():
            if 0 <= value < 256:
                lut[value] = rgba
        rgba_img = lut[np.clip(values, 0, 255).astype(np.uint8)]
        rgba_img[~valid] = 0
        imsave(str(out_png), rgba_img)
        return latlng_bounds(vrt)
