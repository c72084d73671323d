"""Report directories: GeoJSON layers, summary.json, a static report.html and the review map."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from landsight.compare.sources import Prediction
from landsight.labels.vector_out import CrsRequest
from landsight.labels.vectors import Features
from landsight.outputs import atomic_path
from landsight.report.files import write_layers, write_report
from landsight.report.html import Section, report_page, table
from landsight.report.schema import ReportHeader, with_header
from landsight.review import ImageLayer, ReviewItems, VectorLayer, render_image, render_mask, write_review_page

STYLES: dict[str, tuple[str, str, float, bool]] = {
    "confirmed": ("agreement (confirmed)", "#8c8c8c", 0.35, True),
    "shifted": ("shifted", "#ff8c00", 0.35, True),
    "unsupported": ("unsupported: open data only", "#2ca02c", 0.45, True),
    "missing": ("missing: imagery only", "#ff4fa3", 0.5, True),
    "prediction": ("prediction polygons", "#1f5fff", 0.0, False),
    "tiles": ("tiles", "#333333", 0.0, False),
}
"""Layer name -> (legend label, colour, fill opacity, shown at start).

Agreement grey, missing pink, unsupported green, as the issue asks."""

OVERLAY_MAX_PX = 2048


@dataclasses.dataclass(frozen=True)
class CompareSummary:
    """summary.json of a comparison: provenance, the class compared ("class" in the file), pixel metrics
    (`landsight.metrics.summarize`), tile statistics with the worst tiles, feature counts per status, and the
    report's files (set when the report is written)."""

    provenance: dict[str, Any]
    class_name: str
    pixels: dict[str, Any]
    tiles: dict[str, Any]
    features: dict[str, Any]
    files: dict[str, Any] | None = None
    header: ReportHeader = dataclasses.field(default_factory=lambda: ReportHeader.new("compare"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the header (schema "landsight-compare"), then the fields (`files` only once set)."""
        data = {"provenance": self.provenance, "class": self.class_name, "pixels": self.pixels, "tiles": self.tiles,
                "features": self.features}
        return with_header(self.header, data if self.files is None else {**data, "files": self.files})


@dataclasses.dataclass(frozen=True)
class Sources:
    """Rasters the review map draws: the prediction (with how to read it) and the optional image."""

    pred: Path
    prediction: Prediction
    image: Path | None = None


def compare_html(summary: CompareSummary) -> str:
    """report.html of a comparison."""
    px = summary.pixels["per_class"][summary.class_name]
    tiles = summary.tiles
    feats = summary.features
    rows = [(s, f["count"], f["area_m2"], f["mean_score"], f["mean_iou"], f["mean_offset_m"]) for s, f in feats.items()]
    worst = [(t["id"], t["qod"], t["iou"], t["fg_pred"], t["fg_label"], t["pixels"]) for t in tiles["worst"][:100]]
    links = {"review map": "review.html", "summary.json": "summary.json",
             **{f"{n}.geojson": f"layers/{n}.geojson" for n in STYLES}}
    sections = [
        Section("Features", table=table(["status", "count", "area m²", "mean score", "mean IoU", "mean offset m"],
                                        rows)),
        Section("Pixels", table=table(["class", "IoU", "F1", "precision", "recall", "accuracy"],
                                      [(summary.class_name, px["iou"], px["f1"], px["precision"], px["recall"],
                                        summary.pixels["accuracy"])])),
        Section("Tiles", table=table(["tiles", "with foreground", "mean IoU", "mean QoD", "QoD threshold", "below"],
                                     [(tiles["count"], tiles["with_foreground"], tiles["mean_iou"], tiles["mean_qod"],
                                       tiles["qod_threshold"], tiles["below_threshold"])])),
        Section("Worst tiles", table=table(["tile", "QoD", "IoU", "predicted px", "open-data px", "pixels"], worst)),
    ]
    intro = ("Prediction against open data. confirmed: mapped where the imagery shows it; shifted: seen but offset "
             "or overlapping poorly; unsupported: mapped but not seen; missing: seen but not mapped.")
    return report_page(f"landsight compare: {summary.class_name}", intro, sections, links, summary.provenance)


def render_overlays(out_dir: Path, sources: Sources) -> list[ImageLayer]:
    """PNG overlays of the image (if any) and of a raster prediction, in `out_dir`/overlays."""
    folder = out_dir / "overlays"
    folder.mkdir(parents=True, exist_ok=True)
    layers = []
    if sources.image is not None:
        bounds = render_image(sources.image, folder / "imagery.png", max_size=OVERLAY_MAX_PX)
        layers.append(ImageLayer("imagery", "overlays/imagery.png", bounds))
    if sources.prediction.polygons is None:
        bounds = render_mask(sources.pred, folder / "prediction.png", sources.prediction.foreground, "#1f5fff",
                             OVERLAY_MAX_PX)
        layers.append(ImageLayer("prediction (raster)", "overlays/prediction.png", bounds, 0.6, False))
    return layers


def review_items(tiles: dict[str, Any], worst: list[dict[str, Any]], title: str = "Worst tiles") -> ReviewItems:
    """The worst tiles, worst first, as review items."""
    by_id = {f["properties"]["id"]: f for f in tiles["features"]}
    features = [by_id[t["id"]] for t in worst if t["id"] in by_id]
    return ReviewItems(title, {"type": "FeatureCollection", "features": features}, ("qod", "iou"))


def write_compare_report(out_dir: str | Path, summary: CompareSummary, layers: dict[str, Features],
                         sources: Sources, overwrite: bool = False, crs: CrsRequest = None) -> CompareSummary:
    """Write the whole report directory atomically (nothing appears at `out_dir` unless every file was written);
    layers in the CRS `crs` asks for (default WGS 84). Returns `summary` with its files."""
    with atomic_path(out_dir, overwrite, directory=True) as tmp:
        collections = write_layers(tmp / "layers", layers, crs)
        images = render_overlays(tmp, sources)
        summary = dataclasses.replace(summary, files={
            "summary": "summary.json", "report": "report.html", "review": "review.html",
            "layers": {n: f"layers/{n}.geojson" for n in layers}, "overlays": [i.href for i in images]})
        write_report(tmp / "summary.json", summary)
        (tmp / "report.html").write_text(compare_html(summary), encoding="utf-8")
        vectors = [VectorLayer(label, collections[name], color, fill, visible=shown)
                   for name, (label, color, fill, shown) in STYLES.items() if name in collections]
        write_review_page(tmp, f"landsight review: {summary.class_name}", images, vectors,
                          review_items(collections["tiles"], summary.tiles["worst"]), summary.provenance)
    return summary
