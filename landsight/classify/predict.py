"""Classify chips, folders and rasters; write the results as CSV, a vector grid (GeoJSON, GeoPackage, ...), or a
class raster (one pixel per chip-size window)."""

from __future__ import annotations

import csv
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
from landsight.geo import WGS84, reproject_geometries
from landsight.imagery.bands import BandUnits
from landsight.imagery.io import create_raster, open_raster
from landsight.labels.classes import IGNORE_VALUE
from landsight.labels.rasterize import classes_tag
from landsight.labels.vector_formats import is_vector, vector_format
from landsight.labels.vector_out import CrsRequest, check_request, write_features
from landsight.labels.vectors import Features
from landsight.outputs import atomic_path, check_output

log = logging.getLogger(__name__)

OUTPUT_KINDS = {".csv": "csv", ".tif": "raster", ".tiff": "raster"}
"""Outputs other than vector files (`landsight.labels.vector_formats.is_vector`)."""


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
                    batch_size: int = 128,
                    given: BandUnits | None = None) -> tuple[list[InputChip], list[dict[str, Any]]]:
    """Classify every chip of `inputs` (scale and offset from `given`, else each file's metadata); returns the chips
    (pixels dropped) and their result rows."""
    chips: list[InputChip] = []
    rows: list[dict[str, Any]] = []
    with Progress(transient=True) as progress:
        task = progress.add_task("classifying", total=None)
        for batch in batched(iter_inputs(inputs, classifier.bands, classifier.chip_size, indexes, given), batch_size):
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


def write_vector_grid(chips: Sequence[InputChip], rows: Sequence[dict[str, Any]], path: str | Path,
                      overwrite: bool = False, crs: CrsRequest = None) -> int:
    """Chip footprints carrying the result rows as a vector file (format by extension, CRS by `crs`: see
    `landsight.labels.vector_out`; "raster" keeps the chips' CRS when they share one); chips without georeference
    are refused."""
    missing = [c.id for c in chips if c.bounds is None or c.crs is None]
    if missing:
        raise ConfigError(f"{len(missing)} input(s) have no georeference, e.g. {missing[:2]}; write CSV instead "
                          "(a .csv output)")
    crss = sorted({c.crs for c in chips}, key=str)
    common = CRS.from_user_input(crss[0]) if len(crss) == 1 else WGS84
    boxes = np.empty(len(chips), dtype=object)
    for crs_text in crss:
        pick = [i for i, c in enumerate(chips) if c.crs == crs_text]
        footprints = np.array([shapely.box(*b) for b in (chips[i].bounds for i in pick) if b is not None], dtype=object)
        boxes[pick] = reproject_geometries(footprints, CRS.from_user_input(crs_text), common)
    return write_features(path, Features(boxes, list(rows), common), crs, overwrite)


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
                    indexes: Sequence[int] | None = None, overwrite: bool = False,
                    crs: CrsRequest = None, given: BandUnits | None = None) -> list[dict[str, Any]]:
    """Classify `inputs` and write `output` by its suffix (.csv, .tif, or a vector file such as .geojson or .gpkg
    in the CRS `crs` asks for); `given` scales and offsets override the files' metadata. Returns the rows."""
    kind = None
    if output is not None:
        kind = "vector" if is_vector(output) else OUTPUT_KINDS.get(Path(output).suffix.lower())
        if kind is None:
            raise ConfigError(f"output {output}: use a .csv, .tif or vector (.geojson, .gpkg) output")
        check_output(output, overwrite)
        if kind == "vector":
            vector_format(output)  # a format landsight cannot write fails before the work
            check_request(crs)
    chips, rows = classify_inputs(classifier, inputs, indexes, given=given)
    if output is None:
        return rows
    if kind == "csv":
        write_csv_rows(rows, output, overwrite)
    elif kind == "vector":
        write_vector_grid(chips, rows, output, overwrite, crs)
    elif kind == "raster":
        write_class_raster(classifier, chips, rows, output, overwrite)
    return rows

