"""Class masks -> polygons per class (merged across window borders), simplified, filtered, written as vectors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import shapely
from rasterio.io import DatasetReader
from rasterio.windows import Window
from rich.progress import track

from landsight.errors import ConfigError, RasterError
from landsight.geo import area_m2
from landsight.imagery.io import open_raster, read_window
from landsight.imagery.windows import block_windows
from landsight.labels.classes import IGNORE_VALUE
from landsight.labels.polygonize import (
    drop_collinear,
    map_rings,
    polygonize,
    ring_neighbours,
    to_crs_coords,
    unit_edges,
)
from landsight.labels.rasterize import table_from_tags
from landsight.labels.vector_out import CrsRequest, output_crs, write_features
from landsight.labels.vectors import Features
from landsight.outputs import check_output

log = logging.getLogger(__name__)

_SHAPES_DTYPES = ("uint8", "int16", "uint16", "int32")


def vectorize_mask(mask_path: str | Path, out_path: str | Path, simplify: float = 0, min_area: float = 0,
                   dst_crs: CrsRequest = None, overwrite: bool = False, block: int = 1024,
                   smooth: bool = True, workers: int = 1) -> int:
    """Polygonize a class mask into a vector file (format by extension); returns the number of features written.

    Args:
        mask_path: single-band integer mask, e.g. from `landsight rasterize` or `landsight predict`.
        out_path: vector file to write (atomically): .geojson, .geojsonl, .gpkg, ... (see
            `landsight.labels.vector_out`).
        simplify: simplification tolerance in the mask's CRS units (topology preserved); 0 keeps every vertex.
        min_area: drop polygons smaller than this, in m² (in CRS units² when the mask's CRS is projected).
        dst_crs: CRS of the output: None for the format's default (WGS 84 for GeoJSON, the mask's CRS for
            GeoPackage), "raster" for the mask's CRS, or a CRS such as "EPSG:3857".
        overwrite: replace an existing `out_path`.
        block: window size in pixels used to read the mask; objects crossing windows are merged whole.
        smooth: replace pixel staircases by lines through the midpoints of pixel edges (see `smooth_outlines`);
            False keeps the exact pixel edges.
        workers: polygonize windows in this many processes (1: in this one); the polygons are the same.

    Raises:
        RasterError: the mask is missing or not a single-band integer raster.
        ConfigError: `dst_crs`, the output format or a numeric option is invalid.
        OutputExistsError: `out_path` exists and `overwrite` is False.
    """
    check_output(out_path, overwrite)
    with open_raster(mask_path) as src:
        output_crs(out_path, src.crs, dst_crs)  # an unknown format or impossible CRS fails before the work
    features = mask_features(mask_path, simplify, min_area, block, smooth, workers)
    return write_features(out_path, features, dst_crs, overwrite)


def mask_features(mask_path: str | Path, simplify: float = 0, min_area: float = 0, block: int = 1024,
                  smooth: bool = True, workers: int = 1) -> Features:
    """Polygons of a class mask in its CRS, with properties class, value and area_m2 (measured in the mask's CRS).

    Arguments as for `vectorize_mask`; used by it, by the pipelines and by the HTTP API.
    """
    if simplify < 0 or min_area < 0:
        raise ConfigError(f"simplify {simplify} and min_area {min_area} must be >= 0")
    if workers < 1:
        raise ConfigError(f"`workers` {workers} must be at least 1 (1 polygonizes in this process)")
    with open_raster(mask_path) as src:
        names, skip = mask_classes(src)
        pairs = list(polygonize(_mask_windows(src, skip, block), src.width, src.height, workers))
        crs, transform = src.crs, src.transform
    geoms = np.asarray([g for g, _ in pairs], dtype=object)
    geoms = to_crs_coords(smooth_outlines(geoms) if smooth else geoms, transform)
    values = np.array([v for _, v in pairs], dtype=np.int64)
    if simplify > 0:
        geoms = shapely.simplify(geoms, simplify, preserve_topology=True)
    areas = area_m2(geoms, crs)
    keep = (areas if crs.is_geographic else shapely.area(geoms)) >= min_area
    log.info("%d polygon(s); %d below the minimum area %s dropped", len(geoms), int((~keep).sum()), min_area)
    properties = [{"class": names.get(int(v), str(v)), "value": int(v), "area_m2": round(float(a), 3)}
                  for v, a in zip(values[keep], areas[keep], strict=True)]
    return Features(np.asarray(geoms[keep], dtype=object), properties, crs)


def _mask_windows(src: DatasetReader, skip: set[int],
                  block: int) -> Iterator[tuple[Window, np.ndarray, np.ndarray]]:
    """(window, class values, object pixels) of `block` px windows tiling the mask, with a progress bar."""
    windows = list(block_windows(Window(0, 0, src.width, src.height), block))
    for window in track(windows, description="vectorizing", transient=True, disable=_quiet(len(windows))):
        data = read_window(src, window, [1])[0]
        yield window, data, ~np.isin(data, list(skip))


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


def smooth_outlines(polygons: np.ndarray) -> np.ndarray:
    """Cut every pixel corner of pixel-edge `polygons` (pixel coordinates) at the midpoints of their unit edges.

    Diagonal staircases become straight lines, which follow slanted outlines closer than the pixel edges do;
    straight runs keep their place. Each cut is a triangle of 1/8 pixel that never reaches a pixel centre, so
    burning the result again gives the same pixels, and neighbouring objects that share edges still tile exactly.
    All polygons are cut at once (vectorized over their vertices).
    """
    def cut(corners: np.ndarray, ring: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (corners + corners[ring_neighbours(ring)[1]]) / 2, ring

    return drop_collinear(map_rings(unit_edges(polygons), cut))  # no midpoints along straight runs


def _quiet(n_windows: int) -> bool:
    return n_windows < 4 or not log.isEnabledFor(logging.INFO)
