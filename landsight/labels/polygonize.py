"""Label rasters -> polygons, window by window; objects that cross window edges come out whole.

The one polygonizer of landsight (vectorize, compare, change): windows are polygonized in the pixel coordinates of
the whole raster, where the edges of neighbouring windows coincide exactly, and mapped to the CRS at the end.
Windows can be polygonized in worker processes (`workers`); only the polygons on inner window edges are merged.
"""

from __future__ import annotations

import itertools
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor

import numpy as np
import shapely
from affine import Affine
from rasterio import features as rio_features
from rasterio.windows import Window

Piece = tuple[shapely.Polygon, int]
"""(polygon in pixel coordinates of the whole raster, label value)."""
Chunk = tuple[Window, np.ndarray, "np.ndarray | None"]
"""(window, (H, W) integer labels, (H, W) boolean valid pixels or None for labels != 0)."""
RingFn = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def window_shapes(window: Window, labels: np.ndarray, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Polygons (pixel coordinates of the whole raster) and their values of the 4-connected regions of `labels`
    where `valid` (default: labels != 0); built with one vectorized shapely call."""
    valid = labels != 0 if valid is None else valid
    if not valid.any():
        return np.asarray([], dtype=object), np.asarray([], dtype=np.int64)
    offset = Affine.translation(window.col_off, window.row_off)
    rings: list[list[tuple[float, float]]] = []
    owners, values = [], []
    for geojson, value in rio_features.shapes(labels, mask=valid, transform=offset, connectivity=4):
        rings += geojson["coordinates"]
        owners.append(len(geojson["coordinates"]))
        values.append(int(value))
    lengths = np.fromiter(map(len, rings), dtype=np.int64, count=len(rings))
    coords = np.asarray(list(itertools.chain.from_iterable(rings)), dtype=np.float64)
    linear = shapely.linearrings(coords, indices=np.repeat(np.arange(len(rings)), lengths))
    polygons = shapely.polygons(linear, indices=np.repeat(np.arange(len(owners)), owners))
    return np.asarray(polygons, dtype=object), np.asarray(values, dtype=np.int64)


class Polygonizer:
    """Polygons of label windows fed one at a time; the windows must tile the raster without overlap
    (`landsight.imagery.windows.block_windows`).

    Polygons inside a window are handed back at once; those reaching an inner window edge wait and are unioned per
    value by `finish`, so memory holds only the objects on window edges.
    """

    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pending: dict[int, list[np.ndarray]] = {}

    def add(self, window: Window, labels: np.ndarray, valid: np.ndarray | None = None) -> list[Piece]:
        """Polygonize (H, W) integer `labels` of `window` where `valid` (default: labels != 0), 4-connected;
        returns the polygons that lie within the window."""
        return self.add_shapes(window, *window_shapes(window, labels, valid))

    def add_shapes(self, window: Window, polygons: np.ndarray, values: np.ndarray) -> list[Piece]:
        """As `add`, for the `window_shapes` of `window` computed elsewhere."""
        on_edge = self._on_inner_edge(polygons, window)
        for value in np.unique(values[on_edge]).tolist():
            self.pending.setdefault(value, []).append(polygons[on_edge & (values == value)])
        return list(zip(polygons[~on_edge], values[~on_edge].tolist(), strict=True))

    def finish(self) -> list[Piece]:
        """The objects that reached window edges, merged across them, by value."""
        merged: list[Piece] = []
        for value in sorted(self.pending):
            merged += [(polygon, value) for polygon in merge_pieces(np.concatenate(self.pending[value]))]
        self.pending = {}
        return merged

    def _on_inner_edge(self, polygons: np.ndarray, window: Window) -> np.ndarray:
        """Which `polygons` (pixel coordinates) reach an edge of `window` that is not the raster's edge."""
        minx, miny, maxx, maxy = shapely.bounds(polygons).T if len(polygons) else np.zeros((4, 0))
        col0, row0 = window.col_off, window.row_off
        col1, row1 = col0 + window.width, row0 + window.height
        return np.asarray(((minx <= col0) & (col0 > 0)) | ((miny <= row0) & (row0 > 0))
                          | ((maxx >= col1) & (col1 < self.width)) | ((maxy >= row1) & (row1 < self.height)))


def merge_pieces(pieces: np.ndarray) -> np.ndarray:
    """Union of pixel-edge polygons of one value that never overlap (pieces of objects cut by window edges).

    A hole lies inside its window, away from every window edge, so only the outer rings take part in the union; the
    holes go back into the merged polygon that holds their piece. Vertices left on the seams are dropped.
    """
    shells = shapely.polygons(shapely.get_exterior_ring(pieces))
    # with a vertex at every pixel corner the shells form a noded coverage, which GEOS unions fastest
    parts = np.asarray(shapely.get_parts(shapely.coverage_union_all(unit_edges(shells))), dtype=object)
    rings, piece = shapely.get_rings(pieces, return_index=True)
    is_hole = np.r_[False, piece[1:] == piece[:-1]]
    if not is_hole.any():
        return drop_collinear(parts)
    inside, part = shapely.STRtree(parts).query(shapely.point_on_surface(pieces), predicate="within")
    part_of_piece = np.empty(len(pieces), dtype=np.int64)
    part_of_piece[inside] = part
    part_rings, part_index = shapely.get_rings(parts, return_index=True)
    all_rings = np.concatenate([part_rings, rings[is_hole]])
    owner = np.concatenate([part_index, part_of_piece[piece[is_hole]]])
    order = np.argsort(owner, kind="stable")  # each part's own rings (shell first) before the holes it gets back
    return drop_collinear(np.asarray(shapely.polygons(all_rings[order], indices=owner[order]), dtype=object))


def _shapes_of(chunk: Chunk) -> tuple[Window, np.ndarray, np.ndarray]:
    window, labels, valid = chunk
    return (window, *window_shapes(window, labels, valid))


def _shapes_in_workers(chunks: Iterable[Chunk], workers: int) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
    """`window_shapes` of the chunks in `workers` processes, in order, with at most 2 x `workers` chunks in flight."""
    # fork: workers need no importable __main__ (scripts without a main guard work) and start at once
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
        queue: deque[Future[tuple[Window, np.ndarray, np.ndarray]]] = deque()
        for chunk in chunks:
            queue.append(pool.submit(_shapes_of, chunk))
            if len(queue) >= 2 * workers:
                yield queue.popleft().result()
        while queue:
            yield queue.popleft().result()


def polygonize(chunks: Iterable[Chunk], width: int, height: int, workers: int = 1) -> Iterator[Piece]:
    """Pieces of a stream of (window, labels, valid) chunks tiling a `width` x `height` px raster (see
    `Polygonizer.add`), in pixel coordinates; those within a window as soon as it is polygonized.

    `workers` > 1 polygonizes windows in that many processes; the pieces are the same as with one.
    """
    polygonizer = Polygonizer(width, height)
    shapes = _shapes_in_workers(chunks, workers) if workers > 1 else map(_shapes_of, chunks)
    for window, polygons, values in shapes:
        yield from polygonizer.add_shapes(window, polygons, values)
    yield from polygonizer.finish()


def map_rings(polygons: np.ndarray, fn: RingFn) -> np.ndarray:
    """Rebuild `polygons` after `fn` changed the vertices of all their rings at once.

    `fn(coords, ring)` gets the (N, 2) vertices of every ring without the closing one and the ring number of each
    (sorted), and returns the same for the new rings (every ring keeping at least 3 vertices).
    """
    polygons = np.asarray(polygons, dtype=object)
    if len(polygons) == 0:
        return polygons
    rings, owner = shapely.get_rings(polygons, return_index=True)
    coords, ring = shapely.get_coordinates(rings, return_index=True)
    closing = np.r_[ring[1:] != ring[:-1], True]
    coords, ring = fn(coords[~closing], ring[~closing])
    starts, ends = ring_starts(ring), np.r_[ring_starts(ring)[1:], len(ring)]
    coords, ring = np.insert(coords, ends, coords[starts], axis=0), np.insert(ring, ends, ring[starts])
    return np.asarray(shapely.polygons(shapely.linearrings(coords, indices=ring), indices=owner), dtype=object)


def ring_starts(ring: np.ndarray) -> np.ndarray:
    """Index of the first vertex of each ring in a sorted array of ring numbers."""
    return np.flatnonzero(np.r_[True, ring[1:] != ring[:-1]])


def ring_neighbours(ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the previous and next vertex of every vertex along its (closed) ring."""
    starts = ring_starts(ring)
    lengths = np.diff(np.r_[starts, len(ring)])
    first, count = np.repeat(starts, lengths), np.repeat(lengths, lengths)
    position = np.arange(len(ring)) - first
    return first + (position - 1) % count, first + (position + 1) % count


def unit_edges(polygons: np.ndarray) -> np.ndarray:
    """Pixel-edge `polygons` (pixel coordinates: axis-parallel edges of whole pixels) with a vertex at every pixel
    corner along their outlines (`shapely.segmentize(polygons, 1.0)`, several times faster)."""
    def split(corners: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        step = corners[ring_neighbours(ring)[1]] - corners
        length = np.maximum(np.abs(step).max(axis=1).astype(np.int64), 1)
        edge = np.repeat(np.arange(len(corners)), length)
        k = np.arange(len(edge)) - np.repeat(np.cumsum(length) - length, length)
        return corners[edge] + step[edge] / length[edge, None] * k[:, None], ring[edge]

    return map_rings(polygons, split)


def drop_collinear(polygons: np.ndarray) -> np.ndarray:
    """`polygons` without the vertices where their outline runs straight on (same shapes, fewer vertices)."""
    def straight(coords: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prev, nxt = ring_neighbours(ring)
        before, after = coords - coords[prev], coords[nxt] - coords
        cross = before[:, 0] * after[:, 1] - before[:, 1] * after[:, 0]
        keep = (cross != 0) | ((before * after).sum(axis=1) <= 0)
        return coords[keep], ring[keep]

    return map_rings(polygons, straight)


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
