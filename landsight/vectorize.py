"""Class masks -> polygons per class (merged across window borders), simplified, filtered, written as GeoJSON."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio import features as rio_features
from rasterio.crs import CRS
from rasterio.errors import CRSError
from rasterio.io import DatasetReader
from rasterio.warp import transform_geom
from rasterio.windows import Window
from rich.progress import track

from landsight.errors import ConfigError, RasterError
from landsight.imagery.io import open_raster, read_window
from landsight.imagery.windows import block_windows
from landsight.labels.classes import IGNORE_VALUE
from landsight.labels.rasterize import table_from_tags
from landsight.outputs import atomic_path, check_output

log = logging.getLogger(__name__)

_SHAPES_DTYPES = ("uint8", "int16", "uint16", "int32")
WGS84 = CRS.from_epsg(4326)


def vectorize_mask(mask_path: str | Path, out_path: str | Path, simplify: float = 0, min_area: float = 0,
                   dst_crs: str | CRS | None = None, overwrite: bool = False, block: int = 1024,
                   smooth: bool = True) -> int:
    """Polygonize a class mask into a GeoJSON FeatureCollection; returns the number of features written.

    Args:
        mask_path: single-band integer mask, e.g. from `landsight rasterize` or `landsight predict`.
        out_path: GeoJSON file to write (atomically).
        simplify: simplification tolerance in the mask's CRS units (topology preserved); 0 keeps every vertex.
        min_area: drop polygons smaller than this, in m² (in CRS units² when the mask's CRS is projected).
        dst_crs: CRS of the output (e.g. "EPSG:4326"); default the mask's CRS.
        overwrite: replace an existing `out_path`.
        block: window size in pixels used to read the mask; objects crossing windows are merged whole.
        smooth: replace pixel staircases by lines through the midpoints of pixel edges (see `smooth_outline`);
            False keeps the exact pixel edges.

    Raises:
        RasterError: the mask is missing or not a single-band integer raster.
        ConfigError: `dst_crs` or a numeric option is invalid.
        OutputExistsError: `out_path` exists and `overwrite` is False.
    """
    check_output(out_path, overwrite)
    features, crs = mask_features(mask_path, simplify, min_area, dst_crs, block, smooth)
    write_geojson(features, out_path, crs, overwrite)
    return len(features)


def mask_features(mask_path: str | Path, simplify: float = 0, min_area: float = 0, dst_crs: str | CRS | None = None,
                  block: int = 1024, smooth: bool = True) -> tuple[list[dict[str, Any]], CRS]:
    """GeoJSON features (class, value, area_m2) of a class mask and the CRS of their coordinates.

    Arguments as for `vectorize_mask`; used by it and by the pipelines, which write GeoJSON sequences.
    """
    if simplify < 0 or min_area < 0:
        raise ConfigError(f"--simplify {simplify} and --min-area {min_area} must be >= 0")
    target = parse_crs(dst_crs) if dst_crs is not None else None
    with open_raster(mask_path) as src:
        names, skip = mask_classes(src)
        pairs = list(polygonize(src, skip, block))
        crs, transform = src.crs, src.transform
    geoms = np.array([smooth_outline(g) if smooth else g for g, _ in pairs], dtype=object)
    geoms = to_crs_coords(geoms, transform)
    values = np.array([v for _, v in pairs], dtype=np.int64)
    if simplify > 0:
        geoms = shapely.simplify(geoms, simplify, preserve_topology=True)
    areas = area_m2(geoms, crs)
    keep = (areas if crs.is_geographic else shapely.area(geoms)) >= min_area
    log.info("%d polygon(s); %d below --min-area %s dropped", len(geoms), int((~keep).sum()), min_area)
    geoms, values, areas = geoms[keep], values[keep], areas[keep]
    mapped = [shapely.geometry.mapping(g) for g in geoms]
    if target is not None and target != crs and mapped:
        mapped = transform_geom(crs, target, mapped)
    features = [_feature(i, m, names.get(int(v), str(v)), int(v), float(a))
                for i, (m, v, a) in enumerate(zip(mapped, values, areas, strict=True))]
    return features, target or crs


def parse_crs(text: str | CRS) -> CRS:
    """A CRS from user input such as "EPSG:4326"; errors say what to pass."""
    try:
        return text if isinstance(text, CRS) else CRS.from_user_input(text)
    except CRSError as exc:
        raise ConfigError(f"--crs {text!r} is not a coordinate reference system ({exc}); pass e.g. EPSG:4326") from exc


def mask_classes(src: DatasetReader) -> tuple[dict[int, str], set[int]]:
    """Class names by mask value (from the `classes` tag) and the values that are not objects.

    Skipped: the ignore value 255, the raster's nodata value, and 0 when the class table names it "background".
    Without a tag, classes are named after their values.
    """
    if src.count != 1 or src.dtypes[0] not in _SHAPES_DTYPES:
        raise RasterError(f"{src.name} has {src.count} band(s) of {src.dtypes[0]}; vectorize needs a class mask: one "
                          f"band of integer class values ({', '.join(_SHAPES_DTYPES)}) as rasterize/predict write")
    table = table_from_tags(src.tags(), src.name)
    skip = {IGNORE_VALUE}
    if src.nodata is not None:
        skip.add(int(src.nodata))
    if table is None:
        log.warning("%s has no 'classes' tag; naming classes after their mask values", src.name)
        return {}, skip
    names = {c.value: c.name for c in table.classes}
    if names.get(0) == "background":
        skip.add(0)
    return names, skip


def polygonize(src: DatasetReader, skip: set[int], block: int = 1024) -> Iterator[tuple[shapely.Polygon, int]]:
    """(polygon, value) pairs in pixel coordinates of the whole raster, reading `block` px windows.

    Polygons touching an internal window edge are kept aside and unioned per value at the end, so objects that
    cross windows come out whole; the others are yielded as soon as their window is read.
    """
    pending: dict[int, list[shapely.Polygon]] = {}
    windows = list(block_windows(Window(0, 0, src.width, src.height), block))
    for window in track(windows, description="vectorizing", transient=True, disable=_quiet(len(windows))):
        data = read_window(src, window, [1])[0]
        valid = ~np.isin(data, list(skip))
        offset = Affine.translation(window.col_off, window.row_off)
        for geojson, value in rio_features.shapes(data, mask=valid, transform=offset, connectivity=4):
            polygon = shapely.geometry.shape(geojson)
            if _on_inner_edge(polygon, window, src.width, src.height):
                pending.setdefault(int(value), []).append(polygon)
            else:
                yield polygon, int(value)
    for value, parts in pending.items():
        for polygon in shapely.get_parts(shapely.union_all(parts)):
            yield shapely.simplify(polygon, 0), value  # drops the vertices left on the seams


def smooth_outline(polygon: shapely.Polygon) -> shapely.Polygon:
    """Cut every pixel corner of a pixel-edge polygon (pixel coordinates) at the midpoints of its unit edges.

    Diagonal staircases become straight lines, which follow slanted outlines closer than the pixel edges do;
    straight runs keep their place. Each cut is a triangle of 1/8 pixel that never reaches a pixel centre, so
    burning the result again gives the same pixels, and neighbouring objects that share edges still tile exactly.
    """
    def cut(ring: shapely.LinearRing) -> np.ndarray:
        corners = np.asarray(shapely.segmentize(ring, 1.0).coords)[:-1]
        midpoints = (corners + np.roll(corners, -1, axis=0)) / 2
        return np.vstack([midpoints, midpoints[:1]])

    smoothed = shapely.Polygon(cut(polygon.exterior), [cut(ring) for ring in polygon.interiors])
    return shapely.simplify(smoothed, 0)  # drops the midpoints along straight runs


def _on_inner_edge(polygon: shapely.Polygon, window: Window, width: int, height: int) -> bool:
    """True if `polygon` (pixel coordinates) reaches an edge of `window` that is not the raster's edge."""
    minx, miny, maxx, maxy = polygon.bounds
    col0, row0 = window.col_off, window.row_off
    col1, row1 = col0 + window.width, row0 + window.height
    return bool((minx <= col0 and col0 > 0) or (miny <= row0 and row0 > 0)
                or (maxx >= col1 and col1 < width) or (maxy >= row1 and row1 < height))


def _quiet(n_windows: int) -> bool:
    return n_windows < 4 or not log.isEnabledFor(logging.INFO)


def to_crs_coords(geoms: np.ndarray, transform: Affine) -> np.ndarray:
    """Map geometries from pixel (col, row) coordinates to the raster's CRS with its affine `transform`."""
    a, b, c, d, e, f = transform[:6]

    def _apply(coords: np.ndarray) -> np.ndarray:
        cols, rows = coords[:, 0], coords[:, 1]
        return np.column_stack([a * cols + b * rows + c, d * cols + e * rows + f])

    return shapely.transform(geoms, _apply) if len(geoms) else geoms


def area_m2(geoms: np.ndarray, crs: CRS) -> np.ndarray:
    """Areas in square metres: CRS units scaled to metres, or via the local UTM zone for geographic CRSs."""
    if len(geoms) == 0:
        return np.zeros(0)
    if not crs.is_geographic:
        factor = crs.linear_units_factor[1]
        return np.asarray(shapely.area(geoms), dtype=np.float64) * float(factor) ** 2
    lon, lat = shapely.centroid(shapely.box(*shapely.total_bounds(geoms))).coords[0]
    utm = CRS.from_epsg((32600 if lat >= 0 else 32700) + min(60, int((lon + 180) // 6) + 1))
    projected = transform_geom(crs, utm, [shapely.geometry.mapping(g) for g in geoms])
    return np.array([shapely.geometry.shape(m).area for m in projected])


def _feature(i: int, geometry: dict[str, Any], name: str, value: int, area: float) -> dict[str, Any]:
    return {"type": "Feature", "id": i, "properties": {"class": name, "value": value, "area_m2": round(area, 3)},
            "geometry": geometry}


def crs_member(crs: CRS) -> dict[str, Any]:
    """The (pre-RFC 7946) GeoJSON "crs" member naming `crs`, as GDAL reads and writes it."""
    code = crs.to_epsg()
    name = f"urn:ogc:def:crs:EPSG::{code}" if code else crs.to_wkt()
    return {"type": "name", "properties": {"name": name}}


def write_geojson(features: Sequence[dict[str, Any]], path: str | Path, crs: CRS, overwrite: bool = False) -> None:
    """Write a FeatureCollection atomically; a "crs" member is added unless `crs` is EPSG:4326."""
    collection: dict[str, Any] = {"type": "FeatureCollection"}
    if crs != WGS84:
        collection["crs"] = crs_member(crs)
    collection["features"] = list(features)
    with atomic_path(path, overwrite) as tmp, open(tmp, "w") as f:
        json.dump(collection, f)
    log.info("wrote %d feature(s) to %s", len(features), path)


def write_geojson_seq(features: Sequence[dict[str, Any]], path: str | Path, overwrite: bool = False) -> None:
    """Write features as a GeoJSON text sequence (one Feature per line, RFC 8142 without RS), atomically.

    RFC 8142 sequences carry WGS84 coordinates: give features in EPSG:4326 (`mask_features(dst_crs="EPSG:4326")`).
    """
    with atomic_path(path, overwrite) as tmp, open(tmp, "w") as f:
        for feature in features:
            f.write(json.dumps(feature) + "\n")
    log.info("wrote %d feature(s) to %s", len(features), path)
