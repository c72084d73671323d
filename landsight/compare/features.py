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
from shapely import affinity

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


def iou(a: shapely.Geometry, b: shapely.Geometry) -> float:
    """Intersection over union of two areas (0 when both are empty)."""
    union = shapely.area(shapely.union(a, b))
    return float(shapely.area(shapely.intersection(a, b)) / union) if union > 0 else 0.0


def _solid(geoms: np.ndarray, params: MatchParams) -> np.ndarray:
    """Polygons of `geoms` at least `min_area` large and wider than 2 x tolerance (slivers dropped)."""
    parts = np.asarray(shapely.get_parts(np.asarray(geoms, dtype=object)), dtype=object)
    if len(parts) == 0:
        return parts
    keep = (shapely.area(parts) >= max(params.min_area, 1e-9)) & ~shapely.is_empty(
        shapely.buffer(parts, -params.tol))
    return np.asarray(parts[keep], dtype=object)


def _candidates(label: shapely.Geometry, others: np.ndarray, pred: np.ndarray, pred_tree: shapely.STRtree,
                params: MatchParams) -> np.ndarray:
    """Predicted pieces near `label` that the other open-data features do not already account for."""
    hits = pred_tree.query(label, predicate="dwithin", distance=params.shift)
    if len(hits) == 0:
        return np.asarray([], dtype=object)
    region = shapely.buffer(label, params.shift)
    near = shapely.intersection(shapely.union_all(pred[hits]), region)
    if len(others):
        near = shapely.difference(near, shapely.union_all(others))
    return _solid(np.asarray([near], dtype=object), params)


def _offset(label: shapely.Geometry, piece: shapely.Geometry) -> tuple[float, float]:
    """Centroid offset (dx, dy) moving `label` onto `piece`."""
    a, b = shapely.centroid(label), shapely.centroid(piece)
    return b.x - a.x, b.y - a.y


def _best_shift(label: shapely.Geometry, pieces: np.ndarray) -> tuple[float, float, float]:
    """(aligned IoU, dx, dy) of the piece that best matches `label`'s shape once the label is moved onto it."""
    best = (0.0, 0.0, 0.0)
    for piece in pieces:
        dx, dy = _offset(label, piece)
        score = iou(affinity.translate(label, dx, dy), piece)
        if score > best[0]:
            best = (score, dx, dy)
    return best


def match_label(label: shapely.Geometry, pieces: np.ndarray, pred_union: shapely.Geometry,
                params: MatchParams) -> dict[str, Any]:
    """Status, score, IoU, aligned IoU and offset of one open-data feature against nearby predicted `pieces`."""
    over = [p for p in pieces if shapely.intersects(p, label)]
    overlap = shapely.union_all(over) if over else shapely.Polygon()
    raw = iou(label, overlap)
    if raw >= params.iou_threshold:
        dx, dy = _offset(label, overlap)
        aligned = iou(affinity.translate(label, dx, dy), overlap)
    else:
        aligned, dx, dy = _best_shift(label, pieces)
    offset = float(np.hypot(dx, dy))
    if raw >= params.iou_threshold and offset <= params.tol:
        status, score = "confirmed", raw
    elif max(raw, aligned) >= params.match_iou and offset <= params.shift:
        status, score = "shifted", max(raw, aligned)
    else:
        covered = shapely.area(shapely.intersection(label, pred_union)) / max(shapely.area(label), 1e-12)
        status, score, dx, dy, offset = "unsupported", 1.0 - float(covered), 0.0, 0.0, 0.0
    return {"status": status, "score": round(score, 4), "iou": round(raw, 4), "aligned_iou": round(aligned, 4),
            "offset_m": round(offset, 3), "dx_m": round(dx, 3), "dy_m": round(dy, 3),
            "area_m2": round(float(shapely.area(label)), 2)}


def match_features(pred: np.ndarray, labels: np.ndarray, attributes: list[dict[str, Any]],
                   params: MatchParams) -> dict[Status, Matched]:
    """Classify every open-data feature (`labels`, clipped to the extent, with their `attributes`) and find the
    predicted area missing from the open data. Geometries must share one projected CRS."""
    solid = _solid(pred, params) if len(pred) else np.asarray([], dtype=object)
    pred_tree, label_tree = shapely.STRtree(solid), shapely.STRtree(labels)
    pred_union = shapely.union_all(solid) if len(solid) else shapely.Polygon()
    result: dict[Status, Matched] = {s: Matched() for s in STATUSES}
    explained = []
    for i, label in enumerate(labels):
        near = label_tree.query(shapely.buffer(label, params.shift), predicate="intersects")
        others = labels[near[near != i]]
        pieces = _candidates(label, others, solid, pred_tree, params)
        info = match_label(label, pieces, pred_union, params)
        result[info["status"]].add(label, {**attributes[i], **info})
        if info["status"] != "unsupported":
            explained.append(affinity.translate(label, info["dx_m"], info["dy_m"]))
    _add_missing(result["missing"], pred, explained, params)
    return result


def _add_missing(missing: Matched, pred: np.ndarray, explained: list[shapely.Geometry], params: MatchParams) -> None:
    """Predicted pieces left once the matched features (moved by their offsets) are removed, slivers dropped;
    `pred_id` is the index of the predicted polygon in `pred`."""
    cover = np.asarray(shapely.buffer(np.asarray(explained, dtype=object), params.tol / 2), dtype=object)
    tree = shapely.STRtree(cover)
    for j, polygon in enumerate(pred):
        near = tree.query(polygon, predicate="intersects")
        rest = shapely.difference(polygon, shapely.union_all(cover[near])) if len(near) else polygon
        rest = _solid(np.asarray([rest], dtype=object), params)
        for piece in rest:
            area = float(shapely.area(piece))
            missing.add(piece, {"status": "missing", "score": round(area / float(shapely.area(polygon)), 4),
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
