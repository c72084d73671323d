"""Per-feature matching of predicted polygons and open-data features, in both directions.

Each open-data feature is `confirmed` (the imagery shows it where it is mapped), `shifted` (the imagery shows it,
but offset or overlapping poorly) or `unsupported` (the imagery does not show it). Predicted area that no matched
feature explains is `missing` from the open data. All geometry is in a projected CRS, distances in its units (metres).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import numpy as np
import shapely

from landsight.errors import ConfigError

Status = Literal["confirmed", "shifted", "unsupported", "missing"]
STATUSES: tuple[Status, ...] = ("confirmed", "shifted", "unsupported", "missing")


@dataclasses.dataclass(frozen=True)
class MatchParams:
    """Matching thresholds. Lengths in CRS units (metres), areas in square metres.

    iou_threshold: a feature is confirmed when IoU >= this and its offset <= `tolerance`.
    match_iou: below this IoU (raw, or after removing the offset) a feature is not matched at all.
    max_shift: how far to look for the predicted counterpart of a displaced feature (None: max(10 m, 10 px)).
    tolerance: offsets up to this are noise, not a shift; also half the width below which leftovers are slivers
        (None: 2 px).
    min_area: predicted polygons and missing pieces smaller than this are ignored.
    """

    iou_threshold: float = 0.5
    match_iou: float = 0.25
    max_shift: float | None = None
    tolerance: float | None = None
    min_area: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.match_iou <= self.iou_threshold <= 1:
            raise ConfigError(f"need 0 < match IoU ({self.match_iou}) <= IoU threshold ({self.iou_threshold}) <= 1; "
                              "change `iou_threshold`")
        for name in ("max_shift", "tolerance", "min_area"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ConfigError(f"{name} {value} must not be negative")

    def resolved(self, pixel_size: float) -> MatchParams:
        """Fill unset lengths from the pixel size (metres): tolerance 2 px, max_shift max(10 m, 10 px)."""
        tolerance = 2 * pixel_size if self.tolerance is None else self.tolerance
        max_shift = max(10.0, 10 * pixel_size) if self.max_shift is None else self.max_shift
        return dataclasses.replace(self, tolerance=tolerance, max_shift=max(max_shift, tolerance))

    @property
    def shift(self) -> float:
        """max_shift, resolved."""
        return 10.0 if self.max_shift is None else self.max_shift

    @property
    def tol(self) -> float:
        """tolerance, resolved."""
        return 1.0 if self.tolerance is None else self.tolerance


@dataclasses.dataclass
class Matched:
    """Features of one status: geometries (projected CRS) and their properties (open-data attributes + scores)."""

    geometries: list[shapely.Geometry] = dataclasses.field(default_factory=list)
    properties: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def add(self, geometry: shapely.Geometry, properties: dict[str, Any]) -> None:
        """Append one feature."""
        self.geometries.append(geometry)
        self.properties.append(properties)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of two arrays of areas, pair by pair (0 where both are empty)."""
    inter = np.asarray(shapely.area(shapely.intersection(a, b)), dtype=np.float64)
    union = shapely.area(a) + shapely.area(b) - inter  # the area of the union, without computing it
    return np.divide(inter, union, out=np.zeros_like(union), where=union > 0)


def _union_by(geoms: np.ndarray, group: np.ndarray, n: int) -> np.ndarray:
    """Union of `geoms` per group number 0..n-1 (an empty polygon where a group has none); one GEOS call per group
    of two or more, none for single geometries."""
    out = np.full(n, shapely.Polygon(), dtype=object)
    if len(geoms) == 0:
        return out
    order = np.argsort(group, kind="stable")
    geoms, group = np.asarray(geoms, dtype=object)[order], group[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)]
    single = ends - starts == 1
    out[group[starts[single]]] = geoms[starts[single]]
    for start, end in zip(starts[~single].tolist(), ends[~single].tolist(), strict=True):
        out[group[start]] = shapely.union_all(geoms[start:end])
    return out


def _translate(geoms: np.ndarray, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Each geometry moved by its own (dx, dy), in one call."""
    offsets = np.repeat(np.column_stack([dx, dy]), shapely.get_num_coordinates(geoms), axis=0)
    return np.asarray(shapely.transform(geoms, lambda xy: xy + offsets), dtype=object)


def _offsets(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centroid offsets (dx, dy) moving each of `a` onto its partner in `b`."""
    ca, cb = shapely.get_coordinates(shapely.centroid(a)), shapely.get_coordinates(shapely.centroid(b))
    return cb[:, 0] - ca[:, 0], cb[:, 1] - ca[:, 1]


def _solid(geoms: np.ndarray, params: MatchParams) -> tuple[np.ndarray, np.ndarray]:
    """Polygons of `geoms` at least `min_area` large and wider than 2 x tolerance (slivers dropped), and the index
    of the geometry each comes from."""
    parts, index = shapely.get_parts(np.asarray(geoms, dtype=object), return_index=True)
    parts = np.asarray(parts, dtype=object)
    if len(parts) == 0:
        return parts, index
    keep = shapely.area(parts) >= max(params.min_area, 1e-9)
    # wider than 2 x tol: a point farther than tol from the outline proves it (cheap); the rest are shrunk by tol
    inner = shapely.distance(shapely.point_on_surface(parts[keep]), shapely.boundary(parts[keep])) > params.tol
    unsure = np.flatnonzero(keep)[~inner]
    keep[unsure] = ~shapely.is_empty(shapely.buffer(parts[unsure], -params.tol))
    return np.asarray(parts[keep], dtype=object), index[keep]


def _candidates(labels: np.ndarray, solid: np.ndarray, params: MatchParams) -> tuple[np.ndarray, np.ndarray,
                                                                                       np.ndarray]:
    """Predicted pieces near each open-data feature that the other features do not already account for:
    (pieces, the feature each belongs to, the union of all predicted polygons near each feature)."""
    n = len(labels)
    regions = shapely.buffer(labels, params.shift)
    near_label, hit = shapely.STRtree(solid).query(labels, predicate="dwithin", distance=params.shift)
    hits = _union_by(solid[hit], near_label, n)
    found = np.bincount(near_label, minlength=n) > 0
    near = np.full(n, shapely.Polygon(), dtype=object)
    near[found] = shapely.intersection(hits[found], regions[found])
    label, other = shapely.STRtree(labels).query(regions, predicate="intersects")
    label, other = label[label != other], other[label != other]
    crowded = found & (np.bincount(label, minlength=n) > 0)
    near[crowded] = shapely.difference(near[crowded], _union_by(labels[other], label, n)[crowded])
    pieces, owner = _solid(near[found], params)
    return pieces, np.flatnonzero(found)[owner], hits


def _best_shifts(labels: np.ndarray, pieces: np.ndarray, owner: np.ndarray,
                 wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per feature: (aligned IoU, dx, dy) of the piece that best matches its shape once the feature is moved onto
    it (the first such piece; zeros without one), for the features where `wanted`."""
    n = len(labels)
    best, dx, dy = np.zeros(n), np.zeros(n), np.zeros(n)
    pick = wanted[owner]
    pieces, owner = pieces[pick], owner[pick]
    if len(pieces) == 0:
        return best, dx, dy
    px, py = _offsets(labels[owner], pieces)
    score = iou(_translate(labels[owner], px, py), pieces)
    order = np.lexsort((np.arange(len(owner)), -score, owner))  # per feature: highest score, first piece on ties
    first = order[np.r_[True, owner[order][1:] != owner[order][:-1]]]
    first = first[score[first] > 0]
    best[owner[first]], dx[owner[first]], dy[owner[first]] = score[first], px[first], py[first]
    return best, dx, dy


def match_labels(labels: np.ndarray, solid: np.ndarray, params: MatchParams) -> dict[str, np.ndarray]:
    """Status, score, IoU, aligned IoU and offset of every open-data feature against the `solid` predicted polygons
    (arrays, one entry per feature)."""
    n = len(labels)
    pieces, owner, hits = _candidates(labels, solid, params)
    over = shapely.intersects(pieces, labels[owner])
    overlap = _union_by(pieces[over], owner[over], n)
    raw = iou(labels, overlap)
    good = raw >= params.iou_threshold
    aligned, dx, dy = _best_shifts(labels, pieces, owner, ~good)
    if good.any():
        dx[good], dy[good] = _offsets(labels[good], overlap[good])
        aligned[good] = iou(_translate(labels[good], dx[good], dy[good]), overlap[good])
    offset = np.hypot(dx, dy)
    confirmed = good & (offset <= params.tol)
    shifted = ~confirmed & (np.maximum(raw, aligned) >= params.match_iou) & (offset <= params.shift)
    unsupported = ~confirmed & ~shifted
    area = np.asarray(shapely.area(labels), dtype=np.float64)
    covered = shapely.area(shapely.intersection(labels[unsupported], hits[unsupported])) / np.maximum(
        area[unsupported], 1e-12)
    score = np.where(confirmed, raw, np.maximum(raw, aligned))
    score[unsupported] = 1.0 - covered
    dx[unsupported], dy[unsupported], offset[unsupported] = 0.0, 0.0, 0.0
    status = np.where(confirmed, "confirmed", np.where(shifted, "shifted", "unsupported"))
    return {"status": status, "score": score, "iou": raw, "aligned_iou": aligned, "offset_m": offset, "dx_m": dx,
            "dy_m": dy, "area_m2": area}


_DIGITS = {"score": 4, "iou": 4, "aligned_iou": 4, "offset_m": 3, "dx_m": 3, "dy_m": 3, "area_m2": 2}


def match_features(pred: np.ndarray, labels: np.ndarray, attributes: list[dict[str, Any]],
                   params: MatchParams) -> dict[Status, Matched]:
    """Classify every open-data feature (`labels`, clipped to the extent, with their `attributes`) and find the
    predicted area missing from the open data. Geometries must share one projected CRS."""
    pred, labels = np.asarray(pred, dtype=object), np.asarray(labels, dtype=object)
    solid = _solid(pred, params)[0]
    info = match_labels(labels, solid, params)
    columns = {"status": info["status"].tolist()} | {
        key: [round(v, digits) for v in info[key].tolist()] for key, digits in _DIGITS.items()}
    result: dict[Status, Matched] = {s: Matched() for s in STATUSES}
    for i, label in enumerate(labels):
        result[columns["status"][i]].add(label, {**attributes[i], **{key: columns[key][i] for key in columns}})
    moved = info["status"] != "unsupported"
    dx, dy = np.asarray(columns["dx_m"]), np.asarray(columns["dy_m"])
    _add_missing(result["missing"], pred, _translate(labels[moved], dx[moved], dy[moved]), params)
    return result


def _add_missing(missing: Matched, pred: np.ndarray, explained: np.ndarray, params: MatchParams) -> None:
    """Predicted pieces left once the matched features (moved by their offsets) are removed, slivers dropped;
    `pred_id` is the index of the predicted polygon in `pred`."""
    cover = np.asarray(shapely.buffer(explained, params.tol / 2), dtype=object)
    polygon, near = shapely.STRtree(cover).query(pred, predicate="intersects")
    rest = pred.copy()
    covered = np.bincount(polygon, minlength=len(pred)) > 0
    rest[covered] = shapely.difference(pred[covered], _union_by(cover[near], polygon, len(pred))[covered])
    pieces, owner = _solid(rest, params)
    areas, whole = shapely.area(pieces).tolist(), shapely.area(pred)
    for piece, j, area in zip(pieces, owner.tolist(), areas, strict=True):
        missing.add(piece, {"status": "missing", "score": round(area / float(whole[j]), 4),
                            "area_m2": round(area, 2), "pred_id": j})


def summarize_matches(result: dict[Status, Matched]) -> dict[str, Any]:
    """Counts, total areas and mean scores per status (JSON-ready)."""
    summary: dict[str, Any] = {}
    for status, matched in result.items():
        props = matched.properties
        entry: dict[str, Any] = {"count": len(props), "area_m2": round(sum(p["area_m2"] for p in props), 2)}
        for key in ("score", "iou", "offset_m"):
            values = [p[key] for p in props if key in p]
            entry[f"mean_{key}"] = round(float(np.mean(values)), 4) if values else None
        summary[status] = entry
    return summary
