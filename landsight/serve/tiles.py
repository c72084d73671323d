"""XYZ tile math and rendering over a local raster source, on `predict`'s window grid (pure, synchronous).

A predicted tile is never inferred on its own: the source pixels under it are covered by windows of the same
32 px-aligned grid `landsight predict` lays over the whole source (`aligned_window_rows`), and those windows'
probabilities are blended with `predict`'s weights before being resampled (nearest) onto the tile. Every tile therefore
crops the same seamless prediction, its border pixels computed with their neighbours' context.
"""

from __future__ import annotations

import dataclasses
import io
import math
from collections.abc import Sequence

import mercantile
import numpy as np
from affine import Affine
from PIL import Image
from rasterio.crs import CRS
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.warp import reproject, transform_bounds
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from landsight.geo import pixel_size_m
from landsight.imagery.io import open_raster, read_valid_mask, read_window
from landsight.labels.classes import IGNORE_VALUE
from landsight.predict.blend import blend_weights
from landsight.serve.errors import NotFound

TILE_SIZE = 256
"""Tile width and height in px."""
MAX_ZOOM = 24
"""Highest zoom level served."""
MAX_SOURCE_PX = 2048
"""A tile may cover at most this many source pixels across; lower zooms are refused (they would infer too much)."""
WEB_MERCATOR = CRS.from_epsg(3857)
_EARTH_CIRCUMFERENCE_M = 2 * math.pi * 6378137


@dataclasses.dataclass(frozen=True)
class TileSource:
    """A configured local raster: its grid, WGS84 bounds, zoom range and display stretch (per band low, high)."""

    name: str
    path: str
    crs: CRS
    transform: Affine
    width: int
    height: int
    count: int
    bounds: tuple[float, float, float, float]
    min_zoom: int
    native_zoom: int
    stretch: tuple[tuple[float, float], ...]

    @classmethod
    def open(cls, name: str, path: str) -> TileSource:
        """Read a raster's header (and a decimated view for the display stretch)."""
        with open_raster(path) as src:
            bounds = transform_bounds(src.crs, "EPSG:4326", *src.bounds, densify_pts=21)
            lat = (bounds[1] + bounds[3]) / 2
            metres = pixel_size_m(src)  # ground metres; mercator pixels at `lat` are 1/cos(lat) larger
            native = _zoom_for(metres / math.cos(math.radians(lat)))
            bands = [1, 2, 3] if src.count >= 3 else [1]
            scale = max(1, max(src.width, src.height) // 512)
            sample = src.read(bands, out_shape=(len(bands), src.height // scale, src.width // scale), masked=True)
            stretch = tuple(_percentiles(band) for band in sample)
            min_zoom = max(0, native - int(math.log2(MAX_SOURCE_PX / TILE_SIZE)))
            return cls(name, str(path), src.crs, src.transform, src.width, src.height, src.count,
                       tuple(bounds), min_zoom, native, stretch)

    def summary(self) -> dict[str, object]:
        """What `GET /v1/sources` says about it."""
        return {"name": self.name, "bounds": list(self.bounds), "width": self.width, "height": self.height,
                "bands": self.count, "crs": self.crs.to_string(), "min_zoom": self.min_zoom,
                "native_zoom": self.native_zoom, "max_zoom": min(MAX_ZOOM, self.native_zoom + 4)}


def _zoom_for(metres_per_px: float) -> int:
    """The zoom whose web-mercator pixels are closest to `metres_per_px` (mercator metres)."""
    return max(0, min(MAX_ZOOM, round(math.log2(_EARTH_CIRCUMFERENCE_M / TILE_SIZE / metres_per_px))))


def _percentiles(band: np.ma.MaskedArray) -> tuple[float, float]:
    values = band.compressed()
    if not values.size:
        return 0.0, 1.0
    low, high = np.percentile(values, (2, 98))
    return float(low), float(max(high, low + 1e-6))


def check_tile(z: int, x: int, y: int) -> mercantile.Tile:
    """The tile, or NotFound when z/x/y is outside the XYZ grid."""
    if not 0 <= z <= MAX_ZOOM or not (0 <= x < 2 ** z and 0 <= y < 2 ** z):
        top = f"0..{2 ** z - 1}" if 0 <= z <= MAX_ZOOM else "0..2^z-1"
        raise NotFound(f"tile {z}/{x}/{y} does not exist: z must be in 0..{MAX_ZOOM} and x, y in {top}")
    return mercantile.Tile(x, y, z)


def tile_region(source: TileSource, tile: mercantile.Tile, margin: int = 2) -> Window | None:
    """The source pixels under `tile` plus `margin` px, clipped to the raster; None when they do not meet."""
    left, bottom, right, top = transform_bounds(WEB_MERCATOR, source.crs, *mercantile.xy_bounds(tile),
                                                densify_pts=21)
    inverse = ~source.transform
    cols, rows = zip(*(inverse @ (x, y) for x in (left, right) for y in (bottom, top)), strict=True)
    c0, c1 = max(0, math.floor(min(cols)) - margin), min(source.width, math.ceil(max(cols)) + margin)
    r0, r1 = max(0, math.floor(min(rows)) - margin), min(source.height, math.ceil(max(rows)) + margin)
    if c0 >= c1 or r0 >= r1:
        return None
    if max(c1 - c0, r1 - r0) > MAX_SOURCE_PX:
        raise NotFound(f"tile {tile.z}/{tile.x}/{tile.y} covers more than {MAX_SOURCE_PX} px of source "
                       f"{source.name!r}; predicted tiles start at zoom {source.min_zoom}")
    return Window(c0, r0, c1 - c0, r1 - r0)


def windows_over(rows: Sequence[Sequence[Window]], region: Window) -> list[Window]:
    """The grid windows that overlap `region`, row-major (the order `predict` blends them in)."""
    r0, c0 = region.row_off, region.col_off
    r1, c1 = r0 + region.height, c0 + region.width
    return [w for row in rows for w in row
            if w.row_off < r1 and w.row_off + w.height > r0 and w.col_off < c1 and w.col_off + w.width > c0]


def blend_region(region: Window, windows: Sequence[Window], probabilities: Sequence[np.ndarray],
                 overlap: int) -> np.ndarray:
    """(classes, h, w) blended probabilities over `region`, as `StripBlender` computes them for those pixels."""
    h, w = int(region.height), int(region.width)
    scores = np.zeros((probabilities[0].shape[0], h, w), dtype=np.float32)
    weight = np.zeros((h, w), dtype=np.float32)
    for win, probs in zip(windows, probabilities, strict=True):
        full = blend_weights(probs.shape[1], probs.shape[2], overlap)
        wr0, wc0 = int(win.row_off - region.row_off), int(win.col_off - region.col_off)
        r0, c0 = max(0, wr0), max(0, wc0)
        r1, c1 = min(h, wr0 + probs.shape[1]), min(w, wc0 + probs.shape[2])
        part = (slice(r0 - wr0, r1 - wr0), slice(c0 - wc0, c1 - wc0))
        scores[:, r0:r1, c0:c1] += probs[:, part[0], part[1]] * full[part]
        weight[r0:r1, c0:c1] += full[part]
    return scores / np.maximum(weight, 1e-12)


def class_region(source: TileSource, region: Window, probs: np.ndarray, values: np.ndarray,
                 indexes: Sequence[int]) -> np.ndarray:
    """Class values of `region` (argmax of blended `probs`), nodata where the source has no valid pixel."""
    with open_raster(source.path) as src:
        valid = read_valid_mask(src, region, list(indexes))
    classes = values[probs.argmax(axis=0)]
    classes[~valid] = IGNORE_VALUE
    return np.asarray(classes)


def to_tile(data: np.ndarray, region: Window, source: TileSource, tile: mercantile.Tile, nodata: float,
            resampling: Resampling = Resampling.nearest) -> np.ndarray:
    """Resample (bands, h, w) source-grid `data` of `region` onto the tile's 256 x 256 web-mercator grid."""
    out = np.full((data.shape[0], TILE_SIZE, TILE_SIZE), nodata, dtype=data.dtype)
    reproject(data, out, src_transform=window_transform(region, source.transform), src_crs=source.crs,
              src_nodata=nodata, dst_transform=tile_transform(tile), dst_crs=WEB_MERCATOR, dst_nodata=nodata,
              resampling=resampling, tolerance=0)  # exact transform: tiles agree with any other warp of the grid
    return out


def tile_transform(tile: mercantile.Tile, size: int = TILE_SIZE) -> Affine:
    """Affine transform of a tile's pixel grid in EPSG:3857."""
    b = mercantile.xy_bounds(tile)
    return from_bounds(b.left, b.bottom, b.right, b.top, size, size)


def imagery_png(source: TileSource, tile: mercantile.Tile) -> bytes:
    """The source imagery under `tile`, contrast-stretched to 8 bits (grey or the first three bands), as RGBA PNG."""
    region = tile_region(source, tile)
    if region is None:
        return empty_png()
    bands = [1, 2, 3] if source.count >= 3 else [1]
    with open_raster(source.path) as src:
        data = read_window(src, region, bands).astype(np.float32)
        valid = read_valid_mask(src, region, bands)
    scaled = np.stack([np.clip((b - lo) / (hi - lo) * 254 + 1, 1, 255) for b, (lo, hi) in
                       zip(data, source.stretch, strict=True)]).astype(np.uint8)
    scaled[:, ~valid] = 0
    rgb = to_tile(scaled, region, source, tile, nodata=0)
    alpha = np.where(rgb.max(axis=0) > 0, 255, 0).astype(np.uint8)
    pixels = np.concatenate([np.repeat(rgb, 3 // len(bands), axis=0), alpha[None]]).transpose(1, 2, 0)
    return _png(Image.fromarray(np.ascontiguousarray(pixels), mode="RGBA"))


def empty_png() -> bytes:
    """A fully transparent tile."""
    return _png(Image.new("RGBA", (TILE_SIZE, TILE_SIZE), (0, 0, 0, 0)))


def _png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
