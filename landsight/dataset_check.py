"""Health report for an image + vector labels pair before training: CRS, overlap, class balance, nodata, split."""

from __future__ import annotations

import dataclasses
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyogrio
import rasterio
import shapely
from rasterio import windows as rio_windows
from rasterio.io import DatasetReader
from rasterio.windows import Window
from rich.progress import track

from landsight.errors import LabelError
from landsight.imagery.coverage import ValidCounter
from landsight.imagery.io import GDAL_CACHE_MB, open_raster
from landsight.imagery.windows import block_windows, blocked_split, count_train_positions
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.labels.rasterize import burn_window, check_overlap
from landsight.labels.vectors import Features, class_values, read_features
from landsight.labels.weights import class_weights
from landsight.progress import describe_size
from landsight.report.files import write_report
from landsight.report.schema import ReportHeader, with_header

log = logging.getLogger(__name__)

MIN_LABEL_COVERAGE = 0.01
"""Warn when label polygons cover less than this fraction of the image."""
MAX_NODATA = 0.5
"""Warn when more than this fraction of the image is nodata."""


@dataclasses.dataclass(frozen=True)
class DatasetReport:
    """What `landsight dataset check` found. Fractions are 0..1; resolutions in image CRS units per pixel."""

    image: str
    image_crs: str
    image_resolution: tuple[float, float]
    image_size: tuple[int, int]
    nodata_fraction: float
    labels: str
    labels_crs: str
    features: int
    label_area_inside: float
    """Fraction of the label polygons' area that lies inside the image."""
    bbox_coverage: float
    """Fraction of the image covered by the union of the label polygons' bounding boxes."""
    label_coverage: float
    """Fraction of the image covered by the label polygons themselves."""
    class_pixels: dict[str, int]
    class_weights: dict[str, float]
    ignored_pixels: int
    chip_size: int
    val_fraction: float
    val_chips: int
    train_chips: int
    """Disjoint training chips (chip-size blocks outside the validation blocks)."""
    train_positions: int
    """Training chip positions at chip/8 steps clear of the validation blocks (what training samples from)."""
    warnings: tuple[str, ...] = ()
    header: ReportHeader = dataclasses.field(default_factory=lambda: ReportHeader.new("dataset-check"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the header (schema "landsight-dataset-check"), then the fields."""
        data = dataclasses.asdict(self)
        del data["header"]
        data["warnings"] = list(self.warnings)
        return with_header(self.header, data)


def check_dataset(image: str | Path, labels: str | Path, table: ClassTable, field: str | None = None,
                  background: bool = True, chip_size: int = 256, val_fraction: float = 0.2,
                  block: int = 1024) -> DatasetReport:
    """Inspect `image` and `labels` without writing a mask; warnings go into the report and the log.

    Time grows with the number of `block` px windows and chip positions, and with the labels; memory stays bounded.
    Blocks absent from a sparse GeoTIFF are not decoded and windows without labels are not burned.

    Raises:
        LabelError: the labels are missing, empty, lack `field`, name unknown classes or do not overlap the image.
        ConfigError: `chip_size` does not fit the image.
    """
    if background and 0 not in table.values:
        raise LabelError(f"`background=True` needs a class with value 0 in the class table {table.names}; add one "
                         "named 'background' or pass `background=False`")
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), open_raster(image) as src:
        split = blocked_split(src.width, src.height, chip_size, val_fraction)
        features = read_features(labels, src.crs)
        check_overlap(features, tuple(src.bounds), image, labels)
        values = class_values(features, table, field)
        counts, valid = count_pixels(src, features, values, IGNORE_VALUE if not background else 0, block)
        total = src.width * src.height
        inside, bbox_cov, cov = overlap_fractions(features.geometries, shapely.box(*src.bounds))
        pixels = {c.name: int(counts[c.value]) for c in table.classes}
        n_blocks = (src.width // chip_size) * (src.height // chip_size)
        report = DatasetReport(
            image=str(image), image_crs=_crs_name(src.crs), image_resolution=(src.res[0], src.res[1]),
            image_size=(src.width, src.height), nodata_fraction=round(1 - valid / total, 6),
            labels=str(labels), labels_crs=_labels_crs(labels), features=len(features),
            label_area_inside=inside, bbox_coverage=bbox_cov, label_coverage=cov, class_pixels=pixels,
            class_weights=dict(zip(pixels, _weights(pixels), strict=True)),
            ignored_pixels=int(counts[IGNORE_VALUE]), chip_size=chip_size, val_fraction=val_fraction,
            val_chips=len(split.val), train_chips=n_blocks - len(split.val),
            train_positions=count_train_positions(split),
        )
    report = dataclasses.replace(report, warnings=tuple(dataset_warnings(report)))
    for warning in report.warnings:
        log.warning(warning)
    return report


def _weights(pixels: dict[str, int]) -> list[float]:
    """The class weights a loss would use for these pixel counts (`landsight.labels.weights`), to 6 decimals."""
    return [round(float(w), 6) for w in class_weights(np.asarray(list(pixels.values()), dtype=np.float32))]


def count_pixels(src: DatasetReader, features: Features, values: np.ndarray, fill: int,
                 block: int = 1024) -> tuple[np.ndarray, int]:
    """Per-value counts (256) of the labels burned onto `src`'s grid, and the number of valid image pixels."""
    tree = shapely.STRtree(features.geometries)
    counts = np.zeros(256, dtype=np.int64)
    valid, counter = 0, ValidCounter(src)
    windows = list(block_windows(Window(0, 0, src.width, src.height), block))
    log_plan(src, len(windows), block)
    quiet = len(windows) < 4 or not log.isEnabledFor(logging.INFO)
    for window in track(windows, description="counting", transient=True, disable=quiet):
        if len(tree.query(shapely.box(*rio_windows.bounds(window, src.transform)))):
            mask = burn_window(features.geometries, values, tree, src.transform, window, fill)
            counts += np.bincount(mask.ravel(), minlength=256)
        else:  # no label near this window: every pixel gets the fill value
            counts[fill] += int(window.width) * int(window.height)
        valid += counter.count(window)
    return counts, valid


def log_plan(src: DatasetReader, windows: int, block: int) -> None:
    """Say at INFO what the check will read: raster size and pixels, and the number of windows."""
    log.info("dataset check: %s, %s window(s) of %d px to count", describe_size(src.width, src.height), f"{windows:,}",
             block)


def overlap_fractions(geoms: np.ndarray, image_box: shapely.Polygon) -> tuple[float, float, float]:
    """(label area inside the image / label area, image covered by label bboxes, image covered by labels)."""
    area = float(shapely.area(geoms).sum())
    inside = float(shapely.area(shapely.intersection(geoms, image_box)).sum())
    boxes = shapely.union_all(shapely.box(*shapely.bounds(geoms).T))
    covered = shapely.union_all(shapely.intersection(geoms, image_box))
    return (round(inside / area, 6) if area else 0.0, round(boxes.intersection(image_box).area / image_box.area, 6),
            round(covered.area / image_box.area, 6))


def dataset_warnings(report: DatasetReport) -> list[str]:
    """Problems that do not stop training but probably should be fixed first."""
    found = []
    if report.label_coverage < MIN_LABEL_COVERAGE:
        found.append(f"labels cover only {100 * report.label_coverage:.2f} % of the image; add labels or crop the "
                     "image to the labelled area")
    found += [f"class {name!r} has no pixels in the image; label some or drop it from the class table"
              for name, n in report.class_pixels.items() if n == 0]
    if report.nodata_fraction > MAX_NODATA:
        found.append(f"{100 * report.nodata_fraction:.1f} % of the image is nodata; crop it to the valid area")
    if report.val_chips == 0:
        found.append(f"no validation chip fits at `chip_size` {report.chip_size} (image {report.image_size[0]}x"
                     f"{report.image_size[1]} px); use a smaller chip size or `val_fraction` 0 knowingly")
    return found


def write_report_json(report: DatasetReport, path: str | Path, overwrite: bool = False) -> None:
    """Write the report as JSON, atomically."""
    write_report(path, report, overwrite)


def _crs_name(crs: Any) -> str:
    code = crs.to_epsg() if crs is not None else None
    return f"EPSG:{code}" if code else (crs.to_string() if crs is not None else "none")


def _labels_crs(labels: str | Path) -> str:
    """The labels' own CRS as declared in the file (before any reprojection)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # GDAL renumbering duplicate GeoJSON ids
        text = pyogrio.read_info(labels).get("crs")
    return text or "none (EPSG:4326 assumed)"
