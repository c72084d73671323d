"""The demo: train a building model on the western two thirds of the shipped Atlanta sample, predict the whole
image, vectorize, evaluate on the unseen eastern third, and write an HTML page with pictures and numbers."""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
import logging
import time
from pathlib import Path
from typing import Any

from landsight.config import TrainConfig
from landsight.errors import OutputExistsError
from landsight.evaluate import EvaluationReport, evaluate_prediction
from landsight.imagery.io import open_raster
from landsight.labels.classes import ClassTable
from landsight.labels.vectors import read_features
from landsight.outputs import output_folder
from landsight.predict import predict_raster
from landsight.report.files import write_report
from landsight.report.html import Section, write_page
from landsight.report.quicklook import mask_overlay, save_quicklook
from landsight.report.schema import ReportHeader, with_header
from landsight.train.segmentation import train_segmentation
from landsight.vectorize import vectorize_mask

log = logging.getLogger(__name__)

DEMO_CONFIG = TrainConfig(chip_size=256, epochs=12, chips_per_epoch=64, batch_size=8, lr=1e-3, loss="ce+dice",
                          class_weights=(1.0, 4.0), val_fraction=0.0)
"""Settings chosen on validation blocks inside the western two thirds only (`python -m bench.demo_settings`, see
BENCHMARKS.md): building weight 4 against low recall and a 12-epoch one-cycle schedule. All of the western two thirds
trains (no validation blocks); the eastern third is the test, scored once per seed for the record."""


Bounds = tuple[float, float, float, float]
"""(left, bottom, right, top) in the sample image's CRS."""


@dataclasses.dataclass(frozen=True)
class DemoSummary:
    """summary.json of the demo: the held-out building IoU and metrics, validation metrics, polygons, timings (s),
    the model and the train/test bounds."""

    building_iou_east: float | None
    metrics_east: EvaluationReport
    validation: dict[str, Any]
    predicted_polygons: int
    timings: dict[str, float]
    model_sha256: str
    model: str
    train_bounds: Bounds
    test_bounds: Bounds
    header: ReportHeader = dataclasses.field(default_factory=lambda: ReportHeader.new("demo"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the header (schema "landsight-demo"), then the fields (`metrics_east` with its own)."""
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "header"}
        data.update(metrics_east=self.metrics_east.to_dict(), train_bounds=list(self.train_bounds),
                    test_bounds=list(self.test_bounds))
        return with_header(self.header, data)


def sample_paths() -> tuple[Path, Path]:
    """The shipped Atlanta image and its OpenStreetMap buildings."""
    root = Path(str(importlib.resources.files("landsight") / "sample_data"))
    return root / "atlanta.tif", root / "atlanta-buildings.geojson"


def split_bounds(image: Path) -> tuple[Bounds, Bounds]:
    """(western two thirds, eastern third) of the image, as (left, bottom, right, top)."""
    with open_raster(image) as src:
        left, bottom, right, top = src.bounds
        cut = left + round(src.width * 2 / 3) * src.res[0]
    return (left, bottom, cut, top), (cut, bottom, right, top)


def run_demo(out_dir: str | Path, overwrite: bool = False, device: str = "auto",
             config: TrainConfig = DEMO_CONFIG, max_minutes: float | None = 15.0) -> DemoSummary:
    """Run every stage on the sample data into `out_dir`; return the held-out metrics and timings."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OutputExistsError(f"{out} exists and is not empty; pass `overwrite=True` or choose another output folder")
    output_folder(out)
    image, labels = sample_paths()
    west, east = split_bounds(image)
    table = ClassTable.from_list([{"value": 0, "name": "background", "color": "#000000"},
                                  {"value": 1, "name": "building", "color": "#e41a1c"}])
    timings = {}
    t0 = time.monotonic()
    log.info("1/4 training on the western two thirds (%s)", west)
    model = train_segmentation([(str(image), str(labels))], out / "model.pt", table, None, True, config, device,
                               bounds=west, overwrite=True, restart=overwrite, max_minutes=max_minutes)
    timings["train_s"] = round(time.monotonic() - t0, 1)
    log.info("2/4 predicting the whole image")
    t1 = time.monotonic()
    predict_raster(out / "model.pt", image, out / "prediction.tif", overwrite=True, device=device)
    n_polygons = vectorize_mask(out / "prediction.tif", out / "buildings-predicted.geojson", simplify=0.5,
                                min_area=10, overwrite=True)
    timings["predict_s"] = round(time.monotonic() - t1, 1)
    log.info("3/4 evaluating on the eastern third, unseen in training")
    metrics = evaluate_prediction(out / "prediction.tif", labels, out / "evaluation", bounds=east, overwrite=True)
    log.info("4/4 writing the report")
    summary = DemoSummary(metrics.per_class["building"]["iou"], metrics, model.metrics, n_polygons, timings,
                          model.sha256, str(out / "model.pt"), west, east)
    write_report(out / "summary.json", summary)
    _write_report(out, image, labels, east, summary, dataclasses.asdict(config))
    return summary


def _score(value: float | None) -> str:
    """A score to 3 decimals ("n/a" when undefined)."""
    return "n/a" if value is None else f"{value:.3f}"


def _write_report(out: Path, image: Path, labels: Path, east: Bounds, summary: DemoSummary,
                  config: dict[str, Any]) -> None:
    with open_raster(image) as src:
        bounds, shape, crs = tuple(src.bounds), (src.height, src.width), src.crs
    osm = list(read_features(labels, crs).geometries)
    predicted = list(read_features(out / "buildings-predicted.geojson", crs).geometries)
    save_quicklook(image, out / "labels.png", "image + OpenStreetMap buildings", outlines=osm, bounds=bounds, box=east)
    save_quicklook(image, out / "prediction.png", "prediction (red) + OSM outlines (yellow)",
                   mask_overlay(out / "prediction.tif", {1: "#e41a1c"}, shape), osm, bounds, east)
    save_quicklook(image, out / "polygons.png", "predicted building polygons", outlines=predicted, bounds=bounds)
    curves = sorted(out.glob("model*-curves.png"))
    east_metrics = summary.metrics_east
    rows: list[list[object]] = [["class", "IoU", "F1", "precision", "recall", "pixels"]]
    rows += [[name, s["iou"], s["f1"], s["precision"], s["recall"], s["support"]]
             for name, s in east_metrics.per_class.items()]
    sections = [
        Section("Held-out result", f"Building IoU on the eastern third (right of the dashed line, never seen in "
                f"training): {_score(summary.building_iou_east)}.", table=rows),
        Section("Pictures", figures=[(out / "labels.png", "input image and OpenStreetMap labels"),
                                     (out / "prediction.png", "predicted buildings"),
                                     (out / "polygons.png", f"{summary.predicted_polygons} vectorized polygons")]),
        Section("Training", ("Loss per epoch" if len(curves) == 1 else f"Loss per epoch of the {len(curves)} "
                "models whose probabilities are averaged") + ". The whole western two thirds trains; the eastern third "
                "is kept for the test above and never used to choose anything.",
                figures=[(c, f"training loss per epoch, {c.stem.removesuffix('-curves')}") for c in curves]
                + [(out / "evaluation" / "confusion_matrix.png", "confusion matrix, eastern third")]),
        Section("Provenance", pre=json.dumps({"model_sha256": summary.model_sha256, "config": config,
                                              "timings_s": summary.timings, "image": str(image),
                                              "labels": str(labels)}, indent=2)),
    ]
    write_page(out / "index.html", "landsight demo: buildings in Atlanta",
               "Imagery: SpaceNet-style 0.5 m sample (CC BY-SA 4.0). Labels: (c) OpenStreetMap contributors (ODbL).",
               sections)
    log.info("open %s", out / "index.html")
