"""`compare_prediction`: a prediction against open data -> a report directory (tiles, features, summary, review)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from rasterio.io import DatasetReader

from landsight.compare import report
from landsight.compare.features import STATUSES, Matched, MatchParams, Status, match_features, summarize_matches
from landsight.compare.sources import Prediction, describe_raster, footprint, read_open_data, resolve_prediction
from landsight.compare.tiles import TileCounter, TileGrid, score_tiles, worst_tiles
from landsight.errors import ConfigError
from landsight.geo import WGS84, metric_crs, pixel_size_m, reproject_geometries
from landsight.imagery.io import GDAL_CACHE_MB, open_raster
from landsight.imagery.windows import all_windows
from landsight.labels.polygonize import Polygonizer, by_value
from landsight.labels.rasterize import burn_window
from landsight.labels.vector_formats import is_vector
from landsight.labels.vector_out import CrsRequest, check_request, keep_request
from landsight.labels.vectors import Features
from landsight.metrics import summarize
from landsight.outputs import check_output
from landsight.provenance import describe_input, provenance

log = logging.getLogger(__name__)


def scan(src: DatasetReader, prediction: Prediction, labels: np.ndarray, grid: TileGrid,
         block: int = 1024) -> tuple[TileCounter, np.ndarray]:
    """One windowed pass: per-tile confusion counts and the predicted polygons (polygonized unless given)."""
    tree = shapely.STRtree(labels)
    ones = np.ones(len(labels), dtype=np.uint8)
    counter, polygonizer, pieces = TileCounter(), Polygonizer(src.width, src.height), []
    for window in all_windows(src, block):
        fg, valid = prediction.foreground(src, window)
        truth = burn_window(labels, ones, tree, src.transform, window, 0).astype(bool)
        counter.add(grid.keys(window, src.transform, src.crs, src.width), fg, truth, valid)
        if prediction.polygons is None:
            pieces += polygonizer.add(window, fg.astype(np.uint8))
    if prediction.polygons is not None:
        return counter, prediction.polygons
    return counter, by_value([*pieces, *polygonizer.finish()], src.transform).get(1, np.asarray([], dtype=object))


def match_in_metres(src: DatasetReader, pred: np.ndarray, labels: np.ndarray, features: Features,
                    params: MatchParams) -> tuple[dict[Status, Matched], Any]:
    """Per-feature matching in a projected CRS (the raster's, or a UTM zone); returns matches and that CRS.

    `params` should be resolved (`MatchParams.resolved`) for the raster's pixel size.
    """
    lonlat = reproject_geometries(np.asarray([shapely.box(*src.bounds)], dtype=object), src.crs, WGS84)[0]
    crs = metric_crs(src.crs, shapely.bounds(lonlat).tolist())
    pred_m = reproject_geometries(pred, src.crs, crs)
    labels_m = reproject_geometries(labels, src.crs, crs)
    return match_features(pred_m, labels_m, features.properties, params), crs


def compare_prediction(pred: str | Path, labels: str | Path, out_dir: str | Path, class_name: str | None = None,
                       image: str | Path | None = None, grid: TileGrid | None = None, qod_threshold: float = 80.0,
                       match: MatchParams | None = None, threshold: float = 0.5, block: int = 1024,
                       overwrite: bool = False, crs: CrsRequest = None) -> report.CompareSummary:
    """Compare a prediction (class/probability raster, or polygons with `image` as grid) with open-data `labels`.

    Writes `out_dir` atomically: summary.json, report.html, review.html (+ assets/, overlays/) and layers/*.geojson
    (confirmed, shifted, unsupported, missing, prediction, tiles) in WGS 84, or in the CRS `crs` asks for ("raster":
    the grid raster's). Returns the summary.

    Raises:
        ConfigError: polygons given without `image`, or an ambiguous/unknown class.
        OutputExistsError: `out_dir` exists and not `overwrite`.
    """
    check_output(out_dir, overwrite, directory=True)
    check_request(crs)
    grid, match = grid or TileGrid(), match or MatchParams()
    grid_raster = image if is_vector(pred) else pred
    if grid_raster is None:
        raise ConfigError(f"{pred} holds polygons; pass `image` (the image they were predicted from) to set "
                          "the comparison grid and extent")
    # a small GDAL block cache: the windows are read once each (by default GDAL keeps 5 % of RAM of blocks)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(grid_raster) as src:
        prediction = resolve_prediction(src, pred, class_name, threshold)
        match = match.resolved(pixel_size_m(src))
        extent = footprint(src, block)
        features, clipped = read_open_data(labels, src.crs, extent)
        counter, polygons = scan(src, prediction, clipped, grid, block)
        if is_vector(pred):
            polygons = shapely.intersection(polygons, extent)
            polygons = polygons[~shapely.is_empty(polygons)]
        tiles, tile_geoms = score_tiles(counter, grid, src.transform, src.crs, src.width)
        matches, metric = match_in_metres(src, polygons, clipped, features, match)
        facts, crs_in = describe_raster(src), src.crs
    summary = _summary(pred, labels, image, prediction, counter, tiles, matches, grid, qod_threshold, match, facts)
    layers: dict[str, Features] = {
        status: Features(np.asarray(matches[status].geometries, dtype=object), matches[status].properties, metric)
        for status in STATUSES}
    layers["prediction"] = Features(polygons, [{"pred_id": i} for i in range(len(polygons))], crs_in)
    layers["tiles"] = Features(np.asarray(tile_geoms, dtype=object), tiles, WGS84)
    sources = report.Sources(pred=Path(pred), prediction=prediction, image=Path(image) if image else None)
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        summary = report.write_compare_report(out_dir, summary, layers, sources, overwrite, keep_request(crs, crs_in))
    log.info("compared %s with %s: %s", pred, labels,
             ", ".join(f"{s} {summary.features[s]['count']}" for s in STATUSES))
    return summary


def _summary(pred: str | Path, labels: str | Path, image: str | Path | None, prediction: Prediction,
             counter: TileCounter, tiles: list[dict[str, Any]], matches: dict[Status, Matched], grid: TileGrid,
             qod_threshold: float, match: MatchParams, facts: dict[str, Any]) -> report.CompareSummary:
    """The JSON summary: provenance, pixel metrics, tile statistics, worst tiles and feature counts."""
    inputs = {"prediction": describe_input(pred, **({} if is_vector(pred) else facts)),
              "open_data": describe_input(labels)}
    if image:
        inputs["image"] = describe_input(image, **facts)
    tags = facts["tags"] if not is_vector(pred) else {}
    model = {k: tags[k] for k in ("model_arch", "model_sha256", "source_image") if k in tags} or None
    params = {"class": prediction.class_name, "prediction_kind": prediction.kind, "grid": grid.kind,
              "zoom": grid.zoom if grid.kind == "xyz" else None, "tile_size_px": grid.size if grid.kind == "regular"
              else None, "qod_threshold": qod_threshold, "probability_threshold": prediction.threshold,
              **{k: v for k, v in vars(match).items()}}
    with_fg = [t["iou"] for t in tiles if t["fg_pred"] or t["fg_label"]]
    worst = worst_tiles(tiles, qod_threshold)
    return report.CompareSummary(
        provenance=provenance(inputs, params, model),
        class_name=prediction.class_name,
        pixels=summarize(counter.confusion(), ["background", prediction.class_name]),
        tiles={"count": len(tiles), "with_foreground": len(with_fg),
               "mean_iou": round(float(np.mean(with_fg)), 4) if with_fg else None,
               "mean_qod": round(float(np.mean([t["qod"] for t in tiles])), 4) if tiles else None,
               "qod_threshold": qod_threshold, "below_threshold": len(worst), "worst": worst},
        features=summarize_matches(matches),
    )
