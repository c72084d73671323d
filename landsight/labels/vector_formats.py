"""Vector file formats by extension: the one detector for vector inputs and outputs.

>>> vector_format("buildings.geojson").driver
'GeoJSON'
>>> is_vector("prediction.tif")
False
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pyogrio.raw import detect_write_driver

from landsight.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class VectorFormat:
    """A GDAL vector driver and its CRS rule.

    wgs84_default: written in WGS 84 longitude/latitude unless another CRS is asked for (GeoJSON, RFC 7946).
    wgs84_only: WGS 84 by definition; GDAL reprojects every feature (GeoJSON text sequences, RFC 8142; KML).
    """

    driver: str
    wgs84_default: bool = False
    wgs84_only: bool = False

    @property
    def wgs84(self) -> bool:
        """True when files of this format are WGS 84 unless told otherwise."""
        return self.wgs84_default or self.wgs84_only


GEOJSON = VectorFormat("GeoJSON", wgs84_default=True)
GEOJSON_SEQ = VectorFormat("GeoJSONSeq", wgs84_only=True)

FORMATS = {".geojson": GEOJSON, ".json": GEOJSON, ".geojsonl": GEOJSON_SEQ, ".geojsons": GEOJSON_SEQ,
           ".kml": VectorFormat("KML", wgs84_only=True), ".gpkg": VectorFormat("GPKG"),
           ".fgb": VectorFormat("FlatGeobuf"), ".gml": VectorFormat("GML"), ".sqlite": VectorFormat("SQLite")}
"""Formats written by extension; any other extension goes to pyogrio's driver detection."""

READ_ONLY_SUFFIXES = {".shp", ".zip"}
"""Vector inputs that landsight reads but never writes (a Shapefile is several files: no atomic write)."""

_UNWRITABLE = {"ESRI Shapefile": "it is several files", "MapInfo File": "it is several files",
               "CSV": "it drops the geometries"}


def is_vector(path: str | Path) -> bool:
    """True when `path` names a vector file by its extension (GeoJSON, GeoPackage, Shapefile, FlatGeobuf, ...)."""
    suffix = Path(path).suffix.lower()
    return suffix in FORMATS or suffix in READ_ONLY_SUFFIXES


def vector_format(path: str | Path) -> VectorFormat:
    """The format a vector output `path` is written in, from its extension.

    Raises:
        ConfigError: the extension names no vector format, or one that cannot be written safely.
    """
    suffix = Path(path).suffix.lower()
    if suffix in FORMATS:
        return FORMATS[suffix]
    try:
        driver = detect_write_driver(str(path))
    except ValueError as exc:
        raise ConfigError(f"cannot tell the vector format of {path} from its extension ({exc}); name the output "
                          ".geojson, .geojsonl, .gpkg or .fgb") from exc
    if driver in _UNWRITABLE:
        raise ConfigError(f"{path}: landsight does not write {driver} ({_UNWRITABLE[driver]}); name the output "
                          ".gpkg (GeoPackage) or .geojson instead")
    return VectorFormat(driver)
