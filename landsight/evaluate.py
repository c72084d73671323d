"""Score a predicted class mask against labels (vector or raster): confusion matrix by windows, JSON and PNG report."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import shapely
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from rasterio import windows as rio_windows
from rasterio.errors import RasterioIOError
from rasterio.io import DatasetReader
from rasterio.windows import Window
from rich.progress import track

from landsight.errors import ConfigError, LabelError, RasterError
from landsight.imagery.io import open_raster, read_window
from landsight.imagery.windows import block_windows
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.labels.rasterize import burn_window, check_overlap, table_from_tags
from landsight.labels.vector_formats import is_vector
from landsight.labels.vectors import class_values, read_features
from landsight.metrics import confusion_matrix, summarize
from landsight.outputs import atomic_path, check_output
from landsight.report.files import write_report as write_report_file
from landsight.report.schema import ReportHeader, with_header

log = logging.getLogger(__name__)

Bounds = tuple[float, float, float, float]
"""(left, bottom, right, top) in the prediction's CRS."""
TruthReader = Callable[[Window], np.ndarray]
"""Returns the truth as channel indices (IGNORE_VALUE = unlabelled) for a window of the prediction grid."""


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """metrics.json: the scores of `landsight.metrics.summarize` (per class, their means over the classes present,
    accuracy, confusion matrix with rows = truth), the inputs, the bounds and pixel window scored."""

    per_class: dict[str, dict[str, Any]]
    pixels: int
    mean_iou: float | None
    mean_f1: float | None
    mean_precision: float | None
    mean_recall: float | None
    mean_mcc: float | None
    accuracy: float | None
    confusion_matrix: list[list[int]]
    classes: list[str]
    inputs: dict[str, Any]
    bounds: list[float] | None
    window: dict[str, int]
    unpredicted_pixels: int
    """Labelled pixels without a prediction (nodata), not scored."""
    header: ReportHeader = dataclasses.field(default_factory=lambda: ReportHeader.new("evaluation"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the header (schema "landsight-evaluation"), then the fields."""
        data = dataclasses.asdict(self)
        del data["header"]
        return with_header(self.header, data)

def evaluate_prediction(pred_path: str | Path, labels_path: str | Path, out_dir: str | Path,
                        class_field: str | None = None, background: bool = True, bounds: Bounds | None = None,
                        overwrite: bool = False, classes: ClassTable | None = None,
                        block: int = 1024) -> EvaluationReport:
    """Compare the class mask `pred_path` with `labels_path`; write metrics.json and confusion_matrix.png.

    Args:
        pred_path: predicted class mask whose `classes` tag gives the class table.
        labels_path: vector labels (burned onto the prediction grid window by window) or an aligned mask raster.
        out_dir: report directory to create (atomically).
        class_field: vector feature property naming each feature's class (None: the single foreground class).
        background: unlabelled pixels of vector labels are background (True) or ignored (False).
        bounds: evaluate only inside (left, bottom, right, top), in the prediction's CRS.
        overwrite: replace an existing `out_dir`.
        classes: class table to use when the prediction carries no `classes` tag.
        block: window size in pixels.

    Returns:
        The report written to metrics.json: the metrics of `landsight.metrics.summarize`, inputs, bounds and window.
    """
    check_output(out_dir, overwrite, directory=True)
    with open_raster(pred_path) as src, contextlib.ExitStack() as stack:
        table = prediction_classes(src, classes)
        region = bounds_window(src, bounds) if bounds is not None else Window(0, 0, src.width, src.height)
        truth_of = _truth_reader(labels_path, src, table, class_field, background, stack)
        cm, unpredicted = _accumulate(src, truth_of, table, region, block)
    report = EvaluationReport(
        **summarize(cm, table.names),
        inputs={"prediction": str(pred_path), "labels": str(labels_path), "class_field": class_field,
                "background": background},
        bounds=list(bounds) if bounds is not None else None,
        window={"col_off": int(region.col_off), "row_off": int(region.row_off), "width": int(region.width),
                "height": int(region.height)},
        unpredicted_pixels=unpredicted,
    )
    write_report(report, cm, out_dir, overwrite)
    return report


def prediction_classes(src: DatasetReader, fallback: ClassTable | None = None) -> ClassTable:
    """The class table of a prediction mask: its `classes` tag, else `fallback`; a single band is required."""
    if src.count != 1 or not np.issubdtype(np.dtype(src.dtypes[0]), np.integer):
        raise RasterError(f"{src.name} has {src.count} band(s) of {src.dtypes[0]}; evaluate needs a class mask (one "
                          "band of integer class values) as `landsight predict` writes")
    table = table_from_tags(src.tags(), src.name) or fallback
    if table is None:
        raise RasterError(f"{src.name} has no 'classes' tag; pass a dataset config (`config_path`) that lists the "
                          "classes, or evaluate a mask written by landsight predict/rasterize")
    return table


def bounds_window(src: DatasetReader, bounds: Bounds) -> Window:
    """The pixel window of `src` inside `bounds` (edges rounded to the nearest pixel edge, clipped to the raster)."""
    left, bottom, right, top = bounds
    if left >= right or bottom >= top:
        raise ConfigError(f"`bounds` {list(bounds)} must be LEFT BOTTOM RIGHT TOP with left < right, bottom < top")
    window = rio_windows.from_bounds(left, bottom, right, top, transform=src.transform)
    col0, row0 = max(0, round(window.col_off)), max(0, round(window.row_off))
    col1 = min(src.width, round(window.col_off + window.width))
    row1 = min(src.height, round(window.row_off + window.height))
    if col1 <= col0 or row1 <= row0:
        raise ConfigError(f"`bounds` {list(bounds)} do not overlap {src.name} (bounds {list(src.bounds)} in "
                          f"{src.crs}); give bounds in the prediction's CRS")
    return Window(col0, row0, col1 - col0, row1 - row0)


def to_index(data: np.ndarray, lut: np.ndarray) -> np.ndarray:
    """Mask values -> channel indices through a 256-entry `lut`; values outside 0..255 become IGNORE_VALUE."""
    inside = (data >= 0) & (data < lut.size)
    return np.where(inside, lut[np.clip(data, 0, lut.size - 1)], IGNORE_VALUE).astype(np.uint8)


def _accumulate(src: DatasetReader, truth_of: TruthReader, table: ClassTable, region: Window,
                block: int) -> tuple[np.ndarray, int]:
    """Confusion matrix over `region` and the number of labelled pixels without a predicted class."""
    n = len(table)
    lut = table.index_lut()
    cm = np.zeros((n, n), dtype=np.int64)
    unpredicted = 0
    windows = list(block_windows(region, block))
    quiet = len(windows) < 4 or not log.isEnabledFor(logging.INFO)
    for window in track(windows, description="evaluating", transient=True, disable=quiet):
        pred = to_index(read_window(src, window, [1])[0], lut)
        truth = truth_of(window)
        cm += confusion_matrix(truth, pred, n)
        unpredicted += int(((truth < n) & (pred >= n)).sum())
    if unpredicted:
        log.warning("%d labelled pixel(s) have no predicted class (nodata in the prediction); they are not scored",
                    unpredicted)
    return cm, unpredicted


def _truth_reader(labels: str | Path, src: DatasetReader, table: ClassTable, field: str | None, background: bool,
                  stack: contextlib.ExitStack) -> TruthReader:
    if _is_raster(labels):
        return _raster_truth(stack.enter_context(open_raster(labels)), src, table)
    return _vector_truth(labels, src, table, field, background)


def _is_raster(path: str | Path) -> bool:
    """True when `path` opens as a raster (vector formats are recognised by their suffix first)."""
    if is_vector(path) or not Path(path).exists():
        return False
    try:
        with rasterio.open(path):
            return True
    except RasterioIOError:
        return False


def _vector_truth(labels: str | Path, src: DatasetReader, table: ClassTable, field: str | None,
                  background: bool) -> TruthReader:
    """Burn vector labels onto each window of the prediction grid (class names must be in `table`)."""
    if background and 0 not in table.values:
        raise LabelError(f"`background=True` needs a class with value 0 in the prediction's classes {table.names}; "
                         "pass `background=False` for sparse labels")
    features = read_features(labels, src.crs)
    check_overlap(features, tuple(src.bounds), src.name, labels)
    values = class_values(features, table, field)
    tree = shapely.STRtree(features.geometries)
    fill = 0 if background else IGNORE_VALUE
    lut = table.index_lut()

    def truth_of(window: Window) -> np.ndarray:
        return np.asarray(lut[burn_window(features.geometries, values, tree, src.transform, window, fill)])

    return truth_of


def _raster_truth(lsrc: DatasetReader, src: DatasetReader, table: ClassTable) -> TruthReader:
    """Read an aligned label mask; its own `classes` tag (if any) is matched to the prediction's by name."""
    if (lsrc.crs, lsrc.width, lsrc.height) != (src.crs, src.width, src.height) or \
            not lsrc.transform.almost_equals(src.transform):
        raise RasterError(f"label mask {lsrc.name} ({lsrc.width}x{lsrc.height} px, {lsrc.crs}) is not aligned with "
                          f"{src.name} ({src.width}x{src.height} px, {src.crs}); burn vector labels onto the "
                          "prediction's grid with `landsight rasterize PRED LABELS -o MASK` or pass the vector file")
    label_table = table_from_tags(lsrc.tags(), lsrc.name) or table
    unknown = [n for n in label_table.names if n not in table.names]
    if unknown:
        raise LabelError(f"label mask {lsrc.name} has classes {unknown} that the prediction does not have "
                         f"({table.names}); evaluate against labels with the same class names")
    lut = np.full(256, IGNORE_VALUE, dtype=np.uint8)
    for c in label_table.classes:
        lut[c.value] = table.names.index(c.name)
    if lsrc.nodata is not None and 0 <= lsrc.nodata < 256:
        lut[int(lsrc.nodata)] = IGNORE_VALUE
    return lambda window: to_index(read_window(lsrc, window, [1])[0], lut)


def write_report(report: EvaluationReport, cm: np.ndarray, out_dir: str | Path, overwrite: bool = False) -> None:
    """Write `out_dir`/metrics.json and `out_dir`/confusion_matrix.png atomically (the whole directory)."""
    with atomic_path(out_dir, overwrite, directory=True) as tmp:
        write_report_file(tmp / "metrics.json", report)
        plot_confusion(cm, report.classes, tmp / "confusion_matrix.png")
    log.info("wrote %s", out_dir)


def plot_confusion(cm: np.ndarray, names: Sequence[str], path: str | Path) -> None:
    """Save a confusion-matrix heat map: colours normalised by truth row, cells annotated with pixel counts."""
    n = len(names)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=np.float64), where=rows > 0)
    fig = Figure(figsize=(2.5 + 0.8 * n, 2 + 0.7 * n))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, label="fraction of truth row")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j]):,}", ha="center", va="center", fontsize=8,
                    color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(n), names, rotation=45, ha="right")
    ax.set_yticks(range(n), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("truth")
    ax.set_title("confusion matrix (pixels)")
    fig.tight_layout()
    fig.savefig(str(path), dpi=100)
