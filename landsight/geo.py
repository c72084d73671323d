"""Geo helpers every stage shares: CRS parsing, reprojection of geometries, UTM zones and areas in square metres.

UTM zones and geodesic measures come from pyproj (`query_utm_crs_info`, `Geod`), never from hand-written formulas.
Never imports torch or click.
"""

from __future__ import annotations

import functools

import numpy as np
import pyproj
import shapely
from pyproj.aoi import AreaOfInterest
from pyproj.database import query_utm_crs_info
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.io import DatasetReader
from rasterio.warp import transform as warp_transform

from landsight.errors import ConfigError, LabelError

WGS84 = CRS.from_epsg(4326)
"""WGS 84 longitude/latitude (x = longitude), the CRS of RFC 7946 GeoJSON."""


def parse_crs(text: str | CRS) -> CRS:
    """A CRS from user input such as "EPSG:4326"; errors say what to pass."""
    try:
        return text if isinstance(text, CRS) else CRS.from_user_input(text)
    except CRSError as exc:
        raise ConfigError(f"CRS {text!r} is not a coordinate reference system ({exc}); pass e.g. EPSG:4326 or "
                          "EPSG:32616") from exc


def reproject_geometries(geometries: np.ndarray, src_crs: CRS, dst_crs: CRS) -> np.ndarray:
    """Geometries transformed vertex by vertex from `src_crs` to `dst_crs` (x, y = lon, lat for WGS 84).

    Raises:
        LabelError: a vertex does not transform (infinite coordinates, e.g. the far side of the globe).
    """
    geometries = np.asarray(geometries, dtype=object)
    if src_crs == dst_crs or len(geometries) == 0:
        return geometries

    def _transform(coords: np.ndarray) -> np.ndarray:
        xs, ys = warp_transform(src_crs, dst_crs, coords[:, 0].tolist(), coords[:, 1].tolist())
        return np.column_stack([xs, ys])

    out = shapely.transform(geometries, _transform)
    if not np.isfinite(shapely.bounds(out)).all():
        raise LabelError(f"geometries do not transform from {src_crs} to {dst_crs} (infinite coordinates); are "
                         "they on the other side of the globe?")
    return np.asarray(out, dtype=object)


@functools.lru_cache(maxsize=256)
def utm_crs(lon: float, lat: float) -> CRS:
    """The WGS 84 UTM zone of a point (on a zone edge: the eastern zone, and north at the equator).

    >>> utm_crs(-84.39, 33.75).to_epsg()
    32616
    """
    infos = query_utm_crs_info(datum_name="WGS 84", area_of_interest=AreaOfInterest(lon, lat, lon, lat))
    if not infos:
        raise ConfigError(f"no UTM zone holds longitude {lon}, latitude {lat}; pass longitude/latitude in degrees")
    north = lat >= 0

    def rank(code: str) -> tuple[bool, int]:
        zone = int(code) % 100
        return (int(code) // 100 == (326 if north else 327), zone)

    return CRS.from_epsg(int(max((info.code for info in infos), key=rank)))


def metric_crs(crs: CRS, bounds: tuple[float, float, float, float]) -> CRS:
    """`crs` when projected, else the UTM zone of the centre of `bounds` (lon/lat), to measure in metres."""
    if crs.is_projected:
        return crs
    return utm_crs((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)


def geod_of(crs: CRS) -> pyproj.Geod:
    """The ellipsoid of `crs` for geodesic measures (WGS 84 when the CRS names none)."""
    geod = pyproj.CRS.from_wkt(crs.to_wkt()).get_geod()
    return geod if geod is not None else pyproj.Geod(ellps="WGS84")


def area_m2(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """Areas in square metres: planar in a projected CRS (its units scaled to metres, as its pixels measure),
    geodesic on the CRS's ellipsoid (pyproj.Geod) for longitude/latitude."""
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return np.zeros(0)
    if not crs.is_geographic:
        factor = float(crs.linear_units_factor[1])
        return np.asarray(shapely.area(geoms), dtype=np.float64) * factor**2
    geod = geod_of(crs)
    oriented = shapely.orient_polygons(geoms)  # exteriors counter-clockwise: positive geodesic areas
    return np.array([abs(geod.geometry_area_perimeter(g)[0]) for g in oriented], dtype=np.float64)


def pixel_size_m(src: DatasetReader) -> float:
    """Pixel width in metres: CRS units scaled to metres, or the geodesic width at the raster's centre latitude."""
    size = abs(src.transform.a)
    if not src.crs.is_geographic:
        return float(size * src.crs.linear_units_factor[1])
    lon = (src.bounds.left + src.bounds.right) / 2
    lat = (src.bounds.bottom + src.bounds.top) / 2
    return float(geod_of(src.crs).inv(lon, lat, lon + size, lat)[2])
