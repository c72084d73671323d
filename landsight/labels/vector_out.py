"""Every vector landsight writes leaves through here: pyogrio, the format by extension, one CRS policy, atomic.

CRS policy (`output_crs`): GeoJSON (.geojson, .json) is RFC 7946, WGS 84 longitude/latitude, unless another CRS is
asked for (GDAL then writes the legacy "crs" member); GeoJSON text sequences (.geojsonl, .geojsons, RFC 8142) and
KML are always WGS 84; GeoPackage (.gpkg) and the other formats keep the source CRS unless told otherwise.
`KEEP_CRS` ("raster") asks for the source's CRS in any format that allows it. In-memory answers (the HTTP API, the
review map) use `feature_collection`: the same RFC 7946 GeoJSON as a dict.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import pyogrio
import shapely
from pyogrio.raw import write as ogr_write
from rasterio.crs import CRS

from landsight.errors import ConfigError, OutputError
from landsight.geo import WGS84, parse_crs, reproject_geometries
from landsight.labels.vector_formats import VectorFormat, vector_format
from landsight.labels.vectors import Features
from landsight.outputs import atomic_path

log = logging.getLogger(__name__)

KEEP_CRS = "raster"
"""CRS request meaning: keep the source's CRS (the raster's, for polygons of a raster)."""

CrsRequest: TypeAlias = str | CRS | None
"""None: the format's default (see the module docstring); `KEEP_CRS`; or a CRS such as "EPSG:3857"."""

WGS84_PRECISION = 7
"""Decimal places of WGS 84 coordinates (about 1 cm), as RFC 7946 recommends."""


def output_crs(path: str | Path, source: CRS, requested: CrsRequest = None) -> CRS:
    """The CRS a vector file `path` is written in, for geometries in `source` and the `requested` CRS.

    Raises:
        ConfigError: `requested` is no CRS, or not WGS 84 for a format that is WGS 84 by definition.
    """
    fmt = vector_format(path)
    if requested is None:
        return WGS84 if fmt.wgs84 else source
    target = source if _keeps(requested) else parse_crs(requested)
    if fmt.wgs84_only and target != WGS84:
        raise ConfigError(f"{path}: {fmt.driver} files are WGS 84 longitude/latitude by definition, not {target}; "
                          "write .gpkg or .geojson to keep another CRS")
    return target


def check_request(requested: CrsRequest) -> None:
    """Raise ConfigError unless `requested` is None, `KEEP_CRS` or a CRS (to fail before long work)."""
    if requested is not None and not _keeps(requested):
        parse_crs(requested)


def _keeps(requested: CrsRequest) -> bool:
    return isinstance(requested, str) and requested.lower() == KEEP_CRS


def keep_request(requested: CrsRequest, raster_crs: CRS) -> CrsRequest:
    """`requested` with `KEEP_CRS` replaced by `raster_crs`: for layers whose geometries are in other CRSs than
    the raster they describe (tiles in WGS 84, matches in metres)."""
    return raster_crs if _keeps(requested) else requested


def write_features(path: str | Path, features: Features, crs: CrsRequest = None, overwrite: bool = False,
                   precision: int | None = None) -> int:
    """Write `features` (geometries in `features.crs`) to `path` atomically, in the format its extension names and
    the CRS `output_crs` picks; properties keep their types (int, float, bool, text; None and NaN become null).

    `precision`: decimal places of coordinates (default: 7 for WGS 84 GeoJSON, the driver's own otherwise).
    Returns the number of features written.

    Raises:
        ConfigError: unknown format or a CRS it cannot hold.
        OutputExistsError: `path` exists and not `overwrite`.
        OutputError: GDAL failed to write (nothing is left at `path`).
    """
    if len(features.geometries) != len(features.properties):
        raise ValueError(f"{len(features.geometries)} geometries but {len(features.properties)} property dicts")
    fmt = vector_format(path)
    target = output_crs(path, features.crs, crs)
    geoms = reproject_geometries(np.asarray(features.geometries, dtype=object), features.crs, target)
    fields, arrays, masks = property_columns(features.properties)
    options = _layer_options(fmt, target, precision)
    kwargs: dict[str, Any] = {"geometry_type": _geometry_type(geoms, fmt)}
    if kwargs["geometry_type"] == "MultiPolygon":
        kwargs["promote_to_multi"] = True
    with atomic_path(path, overwrite, verify=lambda tmp: _verify(tmp, len(geoms), path, fmt)) as tmp:
        try:
            ogr_write(str(tmp), shapely.to_wkb(geoms) if len(geoms) else np.array([], dtype=object), arrays, fields,
                      field_mask=masks, layer=Path(path).stem, driver=fmt.driver, crs=target.to_string(),
                      layer_options=options, **kwargs)
        except RuntimeError as exc:  # pyogrio's DataSourceError, DataLayerError, FieldError, ...
            raise OutputError(f"cannot write {path} as {fmt.driver}: {exc}; check free space and the folder, or "
                              "choose another format") from exc
    log.debug("%d feature(s) written to %s (%s, %s)", len(geoms), path, fmt.driver, target.to_string())
    return len(geoms)


def _verify(tmp: Path, count: int, path: str | Path, fmt: VectorFormat) -> None:
    """Re-read a written file: GDAL reports some failed writes (a full disk, a file-size limit) only in its log."""
    if count == 0 and fmt.driver == "GeoJSONSeq":
        return  # an empty sequence is an empty file, which GDAL does not recognise when reading
    try:
        found = pyogrio.read_info(tmp, force_feature_count=True)["features"]
    except Exception as exc:  # pyogrio raises several DataSourceError/DataLayerError types
        raise OutputError(f"{path} is incomplete after writing ({exc}); the disk may be full: free space and run "
                          "again") from exc
    if found != count:
        raise OutputError(f"{path} holds {found} of the {count} features written; the disk may be full: free space "
                          "and run again")


def _layer_options(fmt: VectorFormat, crs: CRS, precision: int | None) -> dict[str, str]:
    options = {}
    if fmt.driver == "GeoJSON":
        options["WRITE_NAME"] = "NO"
        if crs == WGS84:
            options["RFC7946"] = "YES"
    if precision is not None and fmt.driver in ("GeoJSON", "GeoJSONSeq"):
        options["COORDINATE_PRECISION"] = str(precision)
    return options


def _geometry_type(geoms: np.ndarray, fmt: VectorFormat) -> str:
    """The layer's geometry type: the one type of all geometries; MultiPolygon for a mix of polygons (promoted)
    except in GeoJSON, which mixes freely; else Unknown (any geometry)."""
    types = set(shapely.get_type_id(geoms).tolist()) if len(geoms) else set()
    if len(types) == 1:
        return str(geoms[0].geom_type)
    polygonal = {int(shapely.GeometryType.POLYGON), int(shapely.GeometryType.MULTIPOLYGON)}
    if types == polygonal and not fmt.driver.startswith("GeoJSON"):
        return "MultiPolygon"
    return "Unknown"


def property_columns(properties: Sequence[dict[str, Any]]) -> tuple[list[str], list[np.ndarray],
                                                                    list[np.ndarray | None]]:
    """Field names, one typed array per field and its null mask (None without nulls), from property dicts.

    A field is bool, int64 or float64 when all its values are (ints and floats together: float64), else text
    (lists and dicts as JSON); missing keys, None, NaN and infinities are null.
    """
    names = list(dict.fromkeys(key for props in properties for key in props))
    arrays, masks = [], []
    for name in names:
        values = [_plain(props.get(name)) for props in properties]
        nulls = np.array([v is None for v in values], dtype=bool)
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            array = np.array([bool(v) for v in values], dtype=bool)
        elif present and all(isinstance(v, int) and not isinstance(v, bool) and -2**63 <= v < 2**63
                             for v in present):
            array = np.array([0 if v is None else v for v in values], dtype=np.int64)
        elif present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
            array = np.array([math.nan if v is None else float(v) for v in values], dtype=np.float64)
            nulls |= ~np.isfinite(array)
            array[nulls] = 0.0
        else:
            array = np.array([_text(v) for v in values], dtype=object)
        arrays.append(array)
        masks.append(nulls if nulls.any() else None)
    return names, arrays, masks


def _plain(value: Any) -> Any:
    """numpy scalars unwrapped."""
    return value.item() if isinstance(value, np.generic) else value


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str)
    return str(value)


def feature_collection(features: Features, precision: int = WGS84_PRECISION) -> dict[str, Any]:
    """RFC 7946 GeoJSON (WGS 84 longitude/latitude) as a dict, for answers that are not files (the HTTP API, the
    review map): the same CRS policy as a written .geojson. Coordinates rounded to `precision` digits."""
    if len(features.geometries) != len(features.properties):
        raise ValueError(f"{len(features.geometries)} geometries but {len(features.properties)} property dicts")
    wgs = reproject_geometries(np.asarray(features.geometries, dtype=object), features.crs, WGS84)
    if len(wgs):
        wgs = shapely.set_precision(wgs, 10.0 ** -precision)
    items = [{"type": "Feature", "properties": {k: _json_value(v) for k, v in props.items()},
              "geometry": shapely.geometry.mapping(geom)} for geom, props in zip(wgs, features.properties, strict=True)]
    return {"type": "FeatureCollection", "features": items}


def _json_value(value: Any) -> Any:
    """Plain JSON value: numpy scalars unwrapped, NaN/inf -> None."""
    value = _plain(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
