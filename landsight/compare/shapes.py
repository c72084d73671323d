"""Raster label arrays -> polygons, window by window, merged across window edges."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import shapely
from affine import Affine
from rasterio import features as rio_features


def window_polygons(labels: np.ndarray, transform: Affine) -> dict[int, list[shapely.Geometry]]:
    """Polygons of each non-zero value of a uint8 (H, W) array, in the coordinates of `transform`."""
    pieces: dict[int, list[shapely.Geometry]] = {}
    if not labels.any():
        return pieces
    for geom, value in rio_features.shapes(labels, mask=labels > 0, transform=transform, connectivity=4):
        pieces.setdefault(int(value), []).append(shapely.geometry.shape(geom))
    return pieces


def merge_pieces(pieces: Iterable[shapely.Geometry], grid_size: float = 0.0) -> np.ndarray:
    """Union polygon pieces cut at window edges and split the result into single polygons.

    `grid_size` (CRS units, e.g. 1/1000 of a pixel) snaps vertices so that edges computed from different window
    transforms coincide exactly.
    """
    pieces = np.asarray(list(pieces), dtype=object)
    if len(pieces) == 0:
        return np.asarray([], dtype=object)
    if grid_size > 0:
        pieces = shapely.set_precision(pieces, grid_size)
    merged = shapely.union_all(pieces, grid_size=grid_size or None)
    parts = shapely.get_parts(merged)
    return np.asarray([p for p in parts if isinstance(p, shapely.Polygon) and not p.is_empty], dtype=object)


def polygons_by_value(chunks: Iterable[tuple[np.ndarray, Affine]], pixel_size: float) -> dict[int, np.ndarray]:
    """Polygons per value over a stream of (uint8 label window, window transform) chunks of one raster."""
    collected: dict[int, list[shapely.Geometry]] = {}
    for labels, transform in chunks:
        for value, polys in window_polygons(labels, transform).items():
            collected.setdefault(value, []).extend(polys)
    return {value: merge_pieces(polys, pixel_size / 1000.0) for value, polys in sorted(collected.items())}
