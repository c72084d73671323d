"""Write polygon layers as RFC 7946 GeoJSON (WGS 84 longitude/latitude), keeping each feature's properties."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.warp import transform as warp_transform

from landsight.errors import LabelError
from landsight.outputs import atomic_path

WGS84 = CRS.from_epsg(4326)


def reproject_geometries(geometries: np.ndarray, src_crs: CRS, dst_crs: CRS) -> np.ndarray:
    """Geometries transformed vertex by vertex from `src_crs` to `dst_crs` (x, y = lon, lat for WGS 84)."""
    geometries = np.asarray(geometries, dtype=object)
    if src_crs == dst_crs or len(geometries) == 0:
        return geometries

    def _transform(coords: np.ndarray) -> np.ndarray:
        xs, ys = warp_transform(src_crs, dst_crs, coords[:, 0].tolist(), coords[:, 1].tolist())
        return np.column_stack([xs, ys])

    out = shapely.transform(geometries, _transform)
    if not np.isfinite(shapely.bounds(out)).all():
        raise LabelError(f"geometries do not transform from {src_crs} to {dst_crs} (infinite coordinates)")
    return np.asarray(out, dtype=object)


def feature_collection(geometries: np.ndarray, properties: Sequence[dict[str, Any]], crs: CRS,
                       precision: int = 7) -> dict[str, Any]:
    """A GeoJSON FeatureCollection in WGS 84 from geometries in `crs`, coordinates rounded to `precision` digits."""
    if len(geometries) != len(properties):
        raise ValueError(f"{len(geometries)} geometries but {len(properties)} property dicts")
    wgs = reproject_geometries(np.asarray(geometries, dtype=object), crs, WGS84)
    if len(wgs):
        wgs = shapely.set_precision(wgs, 10.0 ** -precision)
    features = [{"type": "Feature", "properties": {k: _json_value(v) for k, v in props.items()},
                 "geometry": shapely.geometry.mapping(geom)} for geom, props in zip(wgs, properties, strict=True)]
    return {"type": "FeatureCollection", "features": features}


def write_geojson(path: str | Path, geometries: np.ndarray, properties: Sequence[dict[str, Any]], crs: CRS,
                  overwrite: bool = False) -> int:
    """Write a WGS 84 GeoJSON file atomically; returns the number of features."""
    collection = feature_collection(geometries, properties, crs)
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(json.dumps(collection, separators=(",", ":")))
    return len(collection["features"])


def _json_value(value: Any) -> Any:
    """Plain JSON value: numpy scalars unwrapped, NaN/inf -> None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
