"""Classify chips, folders and rasters; write the results as CSV, a GeoJSON grid, or a class raster (one pixel per
chip-size window)."""

from __future__ import annotations

import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from affine import Affine
from rasterio.crs import CRS
from rich.progress import Progress

from landsight.classify.classifier import Classifier
from landsight.classify.inputs import InputChip, batched, iter_inputs
from landsight.errors import ConfigError
from landsight.imagery.io import create_raster, open_raster
from landsight.labels.classes import IGNORE_VALUE
from landsight.labels.geojson import feature_collection
from landsight.labels.rasterize import classes_tag
from landsight.outputs import atomic_path, check_output

log = logging.getLogger(__name__)

OUTPUT_KINDS = {".csv": "csv", ".geojson": "geojson", ".json": "geojson", ".tif": "raster", ".tiff": "raster"}


def chip_row(chip: InputChip, probs: np.ndarray, classes: Sequence[str], decided: Sequence[str]) -> dict[str, Any]:
    """One result row: chip id, window (for raster chips), decided class(es), probability per class."""
    window = chip.window
    row: dict[str, Any] = {"id": chip.id, "source": chip.source,
                           "col": int(window.col_off) if window is not None else "",
                           "row": int(window.row_off) if window is not None else "",
                           "class": ";".join(decided), "label": chip.label or ""}
    row.update({f"p_{name}": round(float(p), 5) for name, p in zip(classes, probs, strict=True)})
    return row


def classify_inputs(classifier: Classifier, inputs: Sequence[str | Path], indexes: Sequence[int] | None = None,
                    batch_size: int = 128) -> tuple[list[InputChip], list[dict[str, Any]]]:
    """Classify every chip of `inputs`; returns the chips (pixels dropped) and their result rows."""
    chips: list[InputChip] = []
    rows: list[dict[str, Any]] = []
    with Progress(transient=True) as progress:
        task = progress.add_task("classifying", total=None)
        for batch in batched(iter_inputs(inputs, classifier.bands, classifier.chip_size, indexes), batch_size):
            probs = classifier.probabilities([c.data for c in batch])
            for chip, p, decided in zip(batch, probs, classifier.decide(probs), strict=True):
                rows.append(chip_row(chip, p, classifier.classes, decided))
                chip.data = np.empty(0, dtype=np.float32)
                chips.append(chip)
            progress.advance(task, len(batch))
    return chips, rows


def write_csv_rows(rows: Sequence[dict[str, Any]], path: str | Path, overwrite: bool = False) -> None:
    """Rows as CSV (columns from the first row)."""
    with atomic_path(path, overwrite) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["id"])
        writer.writeheader()
        writer.writerows(rows)


def write_geojson_grid(chips: Sequence[InputChip], rows: Sequence[dict[str, Any]], path: str | Path,
                       overwrite: bool = False) -> int:
    """Chip footprints as WGS 84 polygons carrying the result rows; chips without georeference are refused."""
    footprints = {i: c.bounds for i, c in enumerate(chips) if c.bounds is not None}
    missing = [c.id for i, c in enumerate(chips) if i not in footprints or c.crs is None]
    if missing:
        raise ConfigError(f"{len(missing)} input(s) have no georeference, e.g. {missing[:2]}; write CSV instead "
                          "(-o OUT.csv)")
    features: list[dict[str, Any]] = []
    for crs in sorted({c.crs for c in chips}, key=str):
        pick = [i for i, c in enumerate(chips) if c.crs == crs]
        boxes = np.array([shapely.box(*footprints[i]) for i in pick], dtype=object)
        features += feature_collection(boxes, [rows[i] for i in pick], CRS.from_user_input(crs))["features"]
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":")))
    return len(features)


def write_class_raster(classifier: Classifier, chips: Sequence[InputChip], rows: Sequence[dict[str, Any]],
                       path: str | Path, overwrite: bool = False) -> None:
    """One pixel per chip-size window of a single input raster: the class value (IGNORE_VALUE where skipped)."""
    sources = {c.source for c in chips}
    if len(sources) != 1 or any(c.window is None for c in chips) or classifier.multi_label:
        raise ConfigError("a class raster (-o OUT.tif) needs one raster input and a single-label model; write "
                          "CSV or GeoJSON for chips, several inputs or multi-label models")
    size = classifier.chip_size
    table = classifier.model_file.classes
    with open_raster(next(iter(sources))) as src:
        height, width = -(-src.height // size), -(-src.width // size)
        grid = np.full((height, width), IGNORE_VALUE, dtype=np.uint8)
        for chip, row in zip(chips, rows, strict=True):
            assert chip.window is not None
            grid[int(chip.window.row_off) // size, int(chip.window.col_off) // size] = table.value_of(row["class"])
        profile = {"driver": "GTiff", "width": width, "height": height, "count": 1, "dtype": "uint8",
                   "crs": src.crs, "transform": src.transform @ Affine.scale(size), "nodata": IGNORE_VALUE,
                   "compress": "deflate"}
    with atomic_path(path, overwrite) as tmp, create_raster(tmp, profile) as dst:
        dst.write(grid, 1)
        dst.write_colormap(1, table.colormap())
        dst.update_tags(classes=classes_tag(table), chip_size=str(size), model_sha256=classifier.model_file.sha256)


def predict_to_file(classifier: Classifier, inputs: Sequence[str | Path], output: str | Path | None,
                    indexes: Sequence[int] | None = None, overwrite: bool = False) -> list[dict[str, Any]]:
    """Classify `inputs` and write `output` by its suffix (.csv, .geojson, .tif); returns the rows."""
    kind = None
    if output is not None:
        kind = OUTPUT_KINDS.get(Path(output).suffix.lower())
        if kind is None:
            raise ConfigError(f"-o {output}: use a .csv, .geojson or .tif output")
        check_output(output, overwrite)
    chips, rows = classify_inputs(classifier, inputs, indexes)
    if output is None:
        return rows
    if kind == "csv":
        write_csv_rows(rows, output, overwrite)
    elif kind == "geojson":
        write_geojson_grid(chips, rows, output, overwrite)
    elif kind == "raster":
        write_class_raster(classifier, chips, rows, output, overwrite)
    return rows

