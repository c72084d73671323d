"""Read vector labels (GeoJSON, GeoPackage, Shapefile, OSM extracts) and reproject them to an image's CRS."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyogrio.raw import read as ogr_read
from rasterio.crs import CRS
from rasterio.errors import CRSError

from landsight.errors import LabelError
from landsight.geo import reproject_geometries
from landsight.labels.classes import ClassTable

log = logging.getLogger(__name__)


@dataclasses.dataclass
class Features:
    """Polygon features: shapely geometries in `crs` and one property dict per feature."""

    geometries: np.ndarray
    properties: list[dict[str, Any]]
    crs: CRS

    def __len__(self) -> int:
        return len(self.geometries)

    def field(self, name: str) -> list[Any]:
        """Values of property `name`; a missing field raises with the available ones."""
        if self.properties and name not in self.properties[0]:
            raise LabelError(f"label field {name!r} not found; available fields: {sorted(self.properties[0])}")
        return [p.get(name) for p in self.properties]


def read_features(path: str | Path, dst_crs: CRS | None = None) -> Features:
    """Read polygons from `path`, reprojected to `dst_crs` when given; empty or unreadable files raise LabelError."""
    path = Path(path)
    if not path.exists():
        raise LabelError(f"label file not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # GDAL renumbering duplicate GeoJSON ids
            meta, _, wkb, field_data = ogr_read(path)
    except Exception as exc:  # pyogrio raises several DataSourceError/DataLayerError types
        raise LabelError(f"cannot read {path} as vector data ({exc}); use GeoJSON, GeoPackage or Shapefile") from exc
    geoms = shapely.from_wkb(wkb) if len(wkb) else np.array([], dtype=object)
    keep = np.array([g is not None and not g.is_empty and g.geom_type in ("Polygon", "MultiPolygon") for g in geoms],
                    dtype=bool)
    if not keep.any():
        raise LabelError(f"{path} holds no polygon features; labels must be polygons (buildings, land-cover areas)")
    if (~keep).sum():
        log.warning("%s: skipped %d non-polygon or empty feature(s)", path, int((~keep).sum()))
    names = list(meta["fields"])
    columns = [np.asarray(column)[keep].tolist() for column in field_data]  # numpy scalars -> Python values
    properties = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)] if names else [
        {} for _ in range(int(keep.sum()))]
    src_crs = _source_crs(meta.get("crs"), path)
    geoms = geoms[keep]
    if dst_crs is not None and src_crs != dst_crs:
        geoms = _reproject(geoms, src_crs, dst_crs, path)
    geoms = shapely.make_valid(geoms)
    return Features(geoms, properties, dst_crs or src_crs)


def _source_crs(text: str | None, path: Path) -> CRS:
    if not text:
        log.warning("%s has no CRS; assuming EPSG:4326 as GeoJSON specifies", path)
        return CRS.from_epsg(4326)
    try:
        return CRS.from_user_input(text)
    except CRSError as exc:
        raise LabelError(f"{path} declares CRS {text!r} that cannot be used ({exc}); "
                         "reproject it to EPSG:4326") from exc


def _reproject(geoms: np.ndarray, src: CRS, dst: CRS, path: Path) -> np.ndarray:
    try:
        return reproject_geometries(geoms, src, dst)
    except LabelError as exc:
        raise LabelError(f"labels of {path} do not transform from {src} to {dst} (infinite coordinates); "
                         "are they on the other side of the globe from the image?") from exc
    except Exception as exc:  # GDAL raises CPLE_* errors for impossible transforms
        raise LabelError(f"cannot transform labels of {path} from {src} to the image CRS {dst}: {exc}") from exc


def class_values(features: Features, table: ClassTable, field: str | None) -> np.ndarray:
    """Mask value of each feature: the class named by `field` (or the only non-background class when None)."""
    if field is None:
        foreground = [c for c in table.classes if c.name != "background"]
        if len(foreground) != 1:
            raise LabelError(f"the class table has {len(foreground)} classes; pass `class_field` to say which "
                             "feature property names each feature's class")
        return np.full(len(features), foreground[0].value, dtype=np.uint8)
    raw = features.field(field)
    by_name = {c.name: c.value for c in table.classes}
    by_value = {str(c.value): c.value for c in table.classes}
    unknown = sorted({str(v) for v in raw if str(v) not in by_name and str(v) not in by_value})
    if unknown:
        raise LabelError(f"field {field!r} has values {unknown} that are not classes {table.names}; add them to the "
                         "class table in the config, or filter the labels")
    return np.array([by_name.get(str(v), by_value.get(str(v), 0)) for v in raw], dtype=np.uint8)


def table_from_field(features: Features, field: str | None, background: bool,
                     class_name: str = "foreground") -> ClassTable:
    """A class table from the distinct values of `field` (sorted), or one class `class_name` when no field."""
    if field is None:
        return ClassTable.from_names([class_name], background)
    values = features.field(field)
    if any(v is None or v == "" for v in values):
        raise LabelError(f"some features have no value in field {field!r}; fill or drop them")
    distinct: Sequence[Any] = sorted(set(values), key=lambda v: (isinstance(v, str), v))
    if all(isinstance(v, int) and 0 < v < 255 for v in distinct) and not background:
        return ClassTable.from_list([{"value": v, "name": str(v)} for v in distinct])
    return ClassTable.from_names([str(v) for v in distinct], background)
