"""Label rasters -> polygons, window by window; objects that cross window edges come out whole.

The one polygonizer of landsight (vectorize, compare, change): windows are polygonized in the pixel coordinates of
the whole raster, where the edges of neighbouring windows coincide exactly, and mapped to the CRS at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import numpy as np
import shapely
from affine import Affine
from rasterio import features as rio_features
from rasterio.windows import Window

Piece = tuple[shapely.Polygon, int]
"""(polygon in pixel coordinates of the whole raster, label value)."""


class Polygonizer:
    """Polygons of label windows fed one at a time; the windows must tile the raster without overlap
    (`landsight.imagery.windows.block_windows`).

    Polygons inside a window are handed back at once; those reaching an inner window edge wait and are unioned per
    value by `finish`, so memory holds only the objects on window edges.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pending: dict[int, list[shapely.Polygon]] = {}

    def add(self, window: Window, labels: np.ndarray, valid: np.ndarray | None = None) -> list[Piece]:
        """Polygonize (H, W) integer `labels` of `window` where `valid` (default: labels != 0), 4-connected;
        returns the polygons that lie within the window."""
        valid = labels != 0 if valid is None else valid
        if not valid.any():
            return []
        done = []
        offset = Affine.translation(window.col_off, window.row_off)
        for geojson, value in rio_features.shapes(labels, mask=valid, transform=offset, connectivity=4):
            polygon = shapely.geometry.shape(geojson)
            if self._on_inner_edge(polygon, window):
                self.pending.setdefault(int(value), []).append(polygon)
            else:
                done.append((polygon, int(value)))
        return done

    def finish(self) -> list[Piece]:
        """The objects that reached window edges, merged across them, by value."""
        merged = []
        for value in sorted(self.pending):
            for polygon in shapely.get_parts(shapely.union_all(self.pending[value])):
                merged.append((shapely.simplify(polygon, 0), value))  # drops the vertices left on the seams
        self.pending = {}
        return merged

    def _on_inner_edge(self, polygon: shapely.Polygon, window: Window) -> bool:
        """True if `polygon` (pixel coordinates) reaches an edge of `window` that is not the raster's edge."""
        minx, miny, maxx, maxy = polygon.bounds
        col0, row0 = window.col_off, window.row_off
        col1, row1 = col0 + window.width, row0 + window.height
        return bool((minx <= col0 and col0 > 0) or (miny <= row0 and row0 > 0)
                    or (maxx >= col1 and col1 < self.width) or (maxy >= row1 and row1 < self.height))


def polygonize(chunks: Iterable[tuple[Window, np.ndarray, np.ndarray | None]], width: int,
               height: int) -> Iterator[Piece]:
    """Pieces of a stream of (window, labels, valid) chunks tiling a `width` x `height` px raster (see
    `Polygonizer.add`), in pixel coordinates; those within a window as soon as it is read."""
    polygonizer = Polygonizer(width, height)
    for window, labels, valid in chunks:
        yield from polygonizer.add(window, labels, valid)
    yield from polygonizer.finish()


def to_crs_coords(geoms: np.ndarray, transform: Affine) -> np.ndarray:
    """Map geometries from pixel (col, row) coordinates to the raster's CRS with its affine `transform`."""
    a, b, c, d, e, f = transform[:6]

    def _apply(coords: np.ndarray) -> np.ndarray:
        cols, rows = coords[:, 0], coords[:, 1]
        return np.column_stack([a * cols + b * rows + c, d * cols + e * rows + f])

    geoms = np.asarray(geoms, dtype=object)
    return np.asarray(shapely.transform(geoms, _apply), dtype=object) if len(geoms) else geoms


def by_value(pieces: Iterable[Piece], transform: Affine) -> dict[int, np.ndarray]:
    """Polygons per value, sorted by value, in the CRS of the raster's `transform`."""
    grouped: dict[int, list[shapely.Polygon]] = {}
    for polygon, value in pieces:
        grouped.setdefault(value, []).append(polygon)
    return {value: to_crs_coords(np.asarray(grouped[value], dtype=object), transform) for value in sorted(grouped)}
