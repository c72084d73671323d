"""Report directories: GeoJSON layers, summary.json, a static report.html and the review map."""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.crs import CRS

from landsight.compare.sources import Prediction
from landsight.labels.geojson import feature_collection
from landsight.outputs import atomic_path
from landsight.paths import child_path
from landsight.report.html import Section, render_page
from landsight.review import ImageLayer, ReviewItems, VectorLayer, render_image, render_mask, write_review_page

Layer = tuple[np.ndarray, list[dict[str, Any]], CRS]
"""(geometries, properties, CRS of the geometries)."""

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
class Sources:
    """Rasters the review map draws: the prediction (with how to read it) and the optional image."""

    pred: Path
    prediction: Prediction
    image: Path | None = None


def write_json(path: Path, payload: Any) -> None:
    """Pretty JSON (NaN -> error, so callers pass clean values)."""
    path.write_text(json.dumps(payload, indent=2, allow_nan=False), encoding="utf-8")


def write_layers(folder: Path, layers: dict[str, Layer]) -> dict[str, dict[str, Any]]:
    """Write each layer as `folder`/NAME.geojson (WGS 84; NAME must be a plain file name); returns the
    FeatureCollections."""
    folder.mkdir(parents=True, exist_ok=True)
    collections = {}
    for name, (geoms, props, crs) in layers.items():
        collections[name] = feature_collection(geoms, props, crs)
        child_path(folder, f"{name}.geojson").write_text(json.dumps(collections[name], separators=(",", ":")), "utf-8")
    return collections


def fmt(value: Any) -> str:
    """A table cell: floats to 4 significant digits, None empty."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[list[str]]:
    """Rows for `landsight.report.html.Section.table`: the header, then formatted cells."""
    return [list(header), *([fmt(c) for c in row] for row in rows)]


def report_page(title: str, intro: str, sections: Sequence[Section], links: dict[str, str],
                provenance: dict[str, Any]) -> str:
    """A static report (landsight.report.html) with a line of links under the title and provenance at the end."""
    page = render_page(title, intro, [*sections, Section("Provenance", pre=json.dumps(provenance, indent=2))])
    nav = " · ".join(f'<a href="{html.escape(href)}">{html.escape(text)}</a>' for text, href in links.items())
    return page.replace("</h1>", f"</h1><p>{nav}</p>", 1)


def compare_html(summary: dict[str, Any]) -> str:
    """report.html of a comparison."""
    px = summary["pixels"]["per_class"][summary["class"]]
    tiles = summary["tiles"]
    feats = summary["features"]
    rows = [(s, f["count"], f["area_m2"], f["mean_score"], f["mean_iou"], f["mean_offset_m"]) for s, f in feats.items()]
    worst = [(t["id"], t["qod"], t["iou"], t["fg_pred"], t["fg_label"], t["pixels"]) for t in tiles["worst"][:100]]
    links = {"review map": "review.html", "summary.json": "summary.json",
             **{f"{n}.geojson": f"layers/{n}.geojson" for n in STYLES}}
    sections = [
        Section("Features", table=table(["status", "count", "area m²", "mean score", "mean IoU", "mean offset m"],
                                        rows)),
        Section("Pixels", table=table(["class", "IoU", "F1", "precision", "recall", "accuracy"],
                                      [(summary["class"], px["iou"], px["f1"], px["precision"], px["recall"],
                                        summary["pixels"]["accuracy"])])),
        Section("Tiles", table=table(["tiles", "with foreground", "mean IoU", "mean QoD", "QoD threshold", "below"],
                                     [(tiles["count"], tiles["with_foreground"], tiles["mean_iou"], tiles["mean_qod"],
                                       tiles["qod_threshold"], tiles["below_threshold"])])),
        Section("Worst tiles", table=table(["tile", "QoD", "IoU", "predicted px", "open-data px", "pixels"], worst)),
    ]
    intro = ("Prediction against open data. confirmed: mapped where the imagery shows it; shifted: seen but offset "
             "or overlapping poorly; unsupported: mapped but not seen; missing: seen but not mapped.")
    return report_page(f"landsight compare: {summary['class']}", intro, sections, links, summary["provenance"])


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


def write_compare_report(out_dir: str | Path, summary: dict[str, Any], layers: dict[str, Layer], sources: Sources,
                         overwrite: bool = False) -> Path:
    """Write the whole report directory atomically (nothing appears at `out_dir` unless every file was written)."""
    with atomic_path(out_dir, overwrite, directory=True) as tmp:
        collections = write_layers(tmp / "layers", layers)
        images = render_overlays(tmp, sources)
        summary["files"] = {"summary": "summary.json", "report": "report.html", "review": "review.html",
                            "layers": {n: f"layers/{n}.geojson" for n in layers},
                            "overlays": [i.href for i in images]}
        write_json(tmp / "summary.json", summary)
        (tmp / "report.html").write_text(compare_html(summary), encoding="utf-8")
        vectors = [VectorLayer(label, collections[name], color, fill, visible=shown)
                   for name, (label, color, fill, shown) in STYLES.items() if name in collections]
        write_review_page(tmp, f"landsight review: {summary['class']}", images, vectors,
                          review_items(collections["tiles"], summary["tiles"]["worst"]), summary["provenance"])
    return Path(out_dir)
