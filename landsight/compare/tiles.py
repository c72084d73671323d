"""Per-tile agreement between prediction and open data: IoU and the robosat.pink QoD score, on XYZ or regular tiles."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, Literal

import mercantile
import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform
from rasterio.windows import Window

from landsight.errors import ConfigError
from landsight.geo import WGS84, reproject_geometries
from landsight.metrics import per_class_scores

WEB_MERCATOR = CRS.from_epsg(3857)
_HALF_WORLD = 20037508.342789244
"""Half the width of the Web Mercator world, metres."""


def qod(iou: float, fg_pred: int, fg_label: int, pixels: int) -> float:
    """The robosat.pink quality-of-data score of a tile, 0 (worst) to 100 (perfect agreement).

    dist = 1 - IoU; ratio = 100 * max(fg_pred, fg_label) / pixels;
    QoD = 100 - dist * (ln(ratio + 1) + 1e-7) * (100 / ln 100), clamped at 0. Disagreement over a tile full of
    foreground costs more than the same IoU over a few pixels.

    >>> qod(1.0, 40, 40, 100)
    100.0
    """
    if pixels <= 0:
        raise ValueError(f"a tile needs at least one valid pixel (got pixels={pixels})")
    dist = 1.0 - iou
    ratio = 100.0 * max(fg_pred, fg_label) / pixels
    score = 100.0 - dist * (math.log(ratio + 1.0) + 1e-7) * (100.0 / math.log(100.0))
    return max(0.0, score)


def tile_iou(tp: int, fp: int, fn: int) -> float:
    """tp / (tp + fp + fn) via landsight.metrics; 1.0 when neither side has foreground (nothing to disagree on)."""
    cm = np.array([[0, fp], [fn, tp]], dtype=np.int64)
    iou = float(per_class_scores(cm)["iou"][1])
    return 1.0 if math.isnan(iou) else iou


@dataclasses.dataclass(frozen=True)
class TileGrid:
    """Tiles to score: XYZ web-map tiles at `zoom`, or a regular grid of `size` x `size` pixels of the raster."""

    kind: Literal["xyz", "regular"] = "xyz"
    zoom: int = 18
    size: int = 256

    def __post_init__(self) -> None:
        if self.kind not in ("xyz", "regular"):
            raise ConfigError(f"tile grid {self.kind!r} is unknown; use 'xyz' or 'regular'")
        if not 0 <= self.zoom <= 24 or self.size < 1:
            raise ConfigError(f"zoom {self.zoom} must be in 0..24 and tile size {self.size} px positive")

    def keys(self, window: Window, transform: Affine, crs: CRS, width: int) -> np.ndarray:
        """(H, W) int64 tile key of every pixel centre of `window` (raster `width` in pixels)."""
        rows = np.arange(int(window.row_off), int(window.row_off + window.height))
        cols = np.arange(int(window.col_off), int(window.col_off + window.width))
        if self.kind == "regular":
            ncols = -(-width // self.size)
            return (rows[:, None] // self.size) * ncols + (cols[None, :] // self.size)
        knot_r, mx, my = mercator_knot_rows(rows + 0.5, cols + 0.5, transform, crs)
        n, span = 2**self.zoom, 2 * _HALF_WORLD / 2**self.zoom

        def tile_x(x: np.ndarray) -> np.ndarray:
            return np.clip(((x + _HALF_WORLD) // span).astype(np.int64), 0, n - 1)

        def tile_y(y: np.ndarray) -> np.ndarray:
            return np.clip(((_HALF_WORLD - y) // span).astype(np.int64), 0, n - 1)

        tx = _rows_lerped(mx, knot_r, rows + 0.5, tile_x)
        ty = _rows_lerped(my, knot_r, rows + 0.5, tile_y)
        return np.asarray(ty * n + tx, dtype=np.int64)

    def describe(self, key: int, transform: Affine, crs: CRS, width: int) -> tuple[dict[str, Any], shapely.Geometry]:
        """Identity properties (id, x, y[, z]) and WGS 84 polygon of tile `key`."""
        if self.kind == "xyz":
            ty, tx = divmod(int(key), 2**self.zoom)
            west, south, east, north = mercantile.bounds(tx, ty, self.zoom)
            ident = {"id": f"{self.zoom}/{tx}/{ty}", "x": tx, "y": ty, "z": self.zoom}
            return ident, shapely.box(west, south, east, north)
        ncols = -(-width // self.size)
        ty, tx = divmod(int(key), ncols)
        box = Window(tx * self.size, ty * self.size, self.size, self.size)
        left, top = transform @ (box.col_off, box.row_off)
        right, bottom = transform @ (box.col_off + box.width, box.row_off + box.height)
        poly = shapely.segmentize(shapely.box(min(left, right), min(top, bottom), max(left, right), max(top, bottom)),
                                  max(abs(right - left), abs(top - bottom)) / 8)
        wgs = reproject_geometries(np.asarray([poly], dtype=object), crs, WGS84)[0]
        return {"id": f"{tx}/{ty}", "x": tx, "y": ty}, wgs


def _lerp(values: np.ndarray, knots: np.ndarray, targets: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of `values` sampled at `knots` along `axis` onto `targets`."""
    if len(knots) == 1:
        return np.repeat(values, len(targets), axis=axis)
    i = np.clip(np.searchsorted(knots, targets) - 1, 0, len(knots) - 2)
    t = (targets - knots[i]) / (knots[i + 1] - knots[i])
    shape = [1, 1]
    shape[axis] = len(targets)
    a, b = np.take(values, i, axis=axis), np.take(values, i + 1, axis=axis)
    return np.asarray(a + (b - a) * t.reshape(shape))


def mercator_knot_rows(rows: np.ndarray, cols: np.ndarray, transform: Affine, crs: CRS,
                       step: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Web Mercator (x, y) of the pixel positions `cols` on every `step`-th of `rows` (the knot rows, returned
    first): every `step`-th pixel is projected and the columns between them interpolated (the projection is
    smooth: the error is far below a millimetre)."""
    knot_r = np.unique(np.r_[rows[::step], rows[-1]])
    knot_c = np.unique(np.r_[cols[::step], cols[-1]])
    cc, rr = np.meshgrid(knot_c, knot_r)
    xs, ys = transform @ (cc.ravel(), rr.ravel())
    mx, my = (np.asarray(v).reshape(cc.shape) for v in warp_transform(crs, WEB_MERCATOR, xs, ys))
    return knot_r, _lerp(mx, knot_c, cols, axis=1), _lerp(my, knot_c, cols, axis=1)


def _rows_lerped(values: np.ndarray, knots: np.ndarray, targets: np.ndarray,
                 index: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """`index` of `values` (one row per knot) interpolated linearly onto the rows `targets` (as `_lerp`).

    Between two knot rows a column whose two ends fall in the same tile stays in it, so only the columns where
    they differ are interpolated pixel by pixel.
    """
    at_knots = index(values)
    if len(knots) == 1:
        return np.repeat(at_knots, len(targets), axis=0)
    cell = np.clip(np.searchsorted(knots, targets) - 1, 0, len(knots) - 2)
    t = (targets - knots[cell]) / (knots[cell + 1] - knots[cell])
    out = np.empty((len(targets), values.shape[1]), dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, cell[1:] != cell[:-1]])
    for r0, r1 in zip(starts.tolist(), np.r_[starts[1:], len(cell)].tolist(), strict=True):
        j = cell[r0]
        out[r0:r1] = at_knots[j]
        mixed = np.flatnonzero(at_knots[j] != at_knots[j + 1])
        if len(mixed):
            a, b = values[j, mixed], values[j + 1, mixed]
            out[r0:r1, mixed] = index(a + (b - a) * t[r0:r1, None])
    return out


class TileCounter:
    """Confusion counts per tile, accumulated window by window; memory grows with the number of tiles only."""

    def __init__(self) -> None:
        self.counts: dict[int, np.ndarray] = {}

    def add(self, keys: np.ndarray, pred: np.ndarray, label: np.ndarray, valid: np.ndarray) -> None:
        """Count (tn, fn, fp, tp) per tile over the `valid` pixels of one window."""
        codes = keys[valid] * 4 + pred[valid].astype(np.int64) * 2 + label[valid].astype(np.int64)
        uniq, n = np.unique(codes, return_counts=True)
        for code, count in zip(uniq.tolist(), n.tolist(), strict=True):
            key, cell = divmod(code, 4)
            self.counts.setdefault(key, np.zeros(4, dtype=np.int64))[cell] += count

    def confusion(self) -> np.ndarray:
        """2x2 pixel confusion matrix over all tiles: rows = open data (background, class), columns = prediction."""
        total = sum(self.counts.values(), np.zeros(4, dtype=np.int64))
        tn, fn, fp, tp = total.tolist()
        return np.array([[tn, fp], [fn, tp]], dtype=np.int64)


def score_tiles(counter: TileCounter, grid: TileGrid, transform: Affine, crs: CRS,
                width: int) -> tuple[list[dict[str, Any]], list[shapely.Geometry]]:
    """Per tile: identity, pixel counts, IoU and QoD (properties) and its WGS 84 polygon, ordered by key."""
    props, geoms = [], []
    for key in sorted(counter.counts):
        tn, fn, fp, tp = counter.counts[key].tolist()
        ident, geom = grid.describe(key, transform, crs, width)
        pixels, fg_pred, fg_label = tn + fn + fp + tp, tp + fp, tp + fn
        iou = tile_iou(tp, fp, fn)
        ident.update(pixels=pixels, fg_pred=fg_pred, fg_label=fg_label, tp=tp, fp=fp, fn=fn,
                     iou=round(iou, 6), qod=round(qod(iou, fg_pred, fg_label, pixels), 4))
        props.append(ident)
        geoms.append(geom)
    return props, geoms


def worst_tiles(tiles: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    """Tiles whose QoD is below `threshold`, worst first (ties: more foreground first)."""
    bad = [t for t in tiles if t["qod"] < threshold]
    return sorted(bad, key=lambda t: (t["qod"], -max(t["fg_pred"], t["fg_label"])))
