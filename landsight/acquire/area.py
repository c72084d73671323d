"""An area of interest from a bbox, a GeoJSON file or a raster's footprint, always in WGS 84 longitude/latitude."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import shapely
from rasterio.crs import CRS

from landsight.acquire.errors import AreaError
from landsight.errors import LabelError, RasterError
from landsight.geo import WGS84, reproject_geometries
from landsight.imagery.io import open_raster
from landsight.labels.vectors import read_features

MAX_LATITUDE = 85.0511287798066
"""Web Mercator's latitude limit, degrees."""


@dataclasses.dataclass(frozen=True)
class Area:
    """A polygonal area in WGS 84 (x = longitude, y = latitude) and where it came from (for messages)."""

    geometry: shapely.Geometry
    source: str

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        west, south, east, north = self.geometry.bounds
        return float(west), float(south), float(east), float(north)

    def in_crs(self, crs: CRS) -> shapely.Geometry:
        """The area's geometry transformed to `crs` (edges densified first, so they bend as they should)."""
        dense = shapely.segmentize(self.geometry, 0.01)
        return reproject_geometries(np.array([dense], dtype=object), WGS84, crs)[0]


def parse_bbox(text: str) -> Area:
    """An area from "W,S,E,N" in degrees; refuses text that is not four numbers, values out of range, inversion.

    >>> parse_bbox("-75.7,37.5,-75.6,37.6").bounds
    (-75.7, 37.5, -75.6, 37.6)
    """
    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise AreaError(f"`bbox` {text!r} is not four comma-separated numbers; pass WEST,SOUTH,EAST,NORTH in "
                        "degrees, e.g. -75.7,37.5,-75.6,37.6") from exc
    return area_from_bounds(west, south, east, north, f"`bbox` {text!r}")


def area_from_bounds(west: float, south: float, east: float, north: float, source: str) -> Area:
    """An area from bounds in degrees, checked: finite, in range, west < east and south < north."""
    values = (west, south, east, north)
    if not all(math.isfinite(v) for v in values):
        raise AreaError(f"{source}: bounds must be finite numbers")
    if not (-180 <= west <= 180 and -180 <= east <= 180):
        raise AreaError(f"{source}: longitudes must lie within -180..180 degrees (got west={west}, east={east}); "
                        "pass WEST,SOUTH,EAST,NORTH in degrees")
    if not (-90 <= south <= 90 and -90 <= north <= 90):
        raise AreaError(f"{source}: latitudes must lie within -90..90 degrees (got south={south}, north={north}); "
                        "pass WEST,SOUTH,EAST,NORTH in degrees, longitude first")
    if west >= east or south >= north:
        raise AreaError(f"{source} is inverted or empty (west={west}, east={east}, south={south}, north={north}); "
                        "pass WEST,SOUTH,EAST,NORTH with west < east and south < north (split an area that crosses "
                        "the antimeridian in two)")
    return Area(shapely.box(west, south, east, north), source)


def area_from_geojson(path: str | Path) -> Area:
    """The union of the polygons in a vector file (GeoJSON, GeoPackage, ...), in WGS 84."""
    try:
        features = read_features(path, WGS84)
    except LabelError as exc:
        raise AreaError(f"area {path}: {exc}") from exc
    geometry = shapely.union_all(features.geometries)
    if geometry.is_empty:
        raise AreaError(f"area {path} is empty; pass a file with at least one polygon")
    west, south, east, north = geometry.bounds
    area_from_bounds(west, south, east, north, f"area {path}")  # range checks
    return Area(geometry, f"area {path}")


def area_from_raster(path: str | Path) -> Area:
    """A raster's footprint (its bounds in its CRS, edges densified) in WGS 84."""
    try:
        with open_raster(path) as src:
            crs, bounds = src.crs, src.bounds
    except RasterError as exc:
        raise AreaError(f"`raster`: {exc}") from exc
    box = shapely.segmentize(shapely.box(*bounds), max(bounds.right - bounds.left, bounds.top - bounds.bottom) / 16)
    geometry = reproject_geometries(np.array([box], dtype=object), crs, WGS84)[0]
    return Area(geometry, f"raster {path}")
