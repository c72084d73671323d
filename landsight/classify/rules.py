"""Chips cut from a raster and labelled by a rule: cloud cover from a cloud mask / QA band, or the majority (or every
present) class of a label raster or of polygons."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import shapely
from rasterio import windows as rio_windows
from rasterio.enums import Resampling
from rasterio.io import DatasetReader
from rasterio.windows import Window
from rich.progress import track

from landsight.classify.chips import ChipSet, read_chip_window
from landsight.errors import ConfigError, LabelError
from landsight.imagery.bands import BandSpec, BandUnits, band_spec_for
from landsight.imagery.io import aligned, open_raster
from landsight.imagery.windows import sliding_windows
from landsight.labels.classes import IGNORE_VALUE
from landsight.labels.rasterize import burn_window, table_from_tags
from landsight.labels.vectors import class_values, read_features, table_from_field

log = logging.getLogger(__name__)

CLOUD_CLASSES = ("clear", "cloudy")


@dataclasses.dataclass(frozen=True)
class ChipGrid:
    """Where chips are cut: `size` px squares every `stride` px (overlapping when smaller than `size`, sparse when
    larger); chips with more than `max_nodata` nodata are skipped."""

    size: int = 64
    stride: int | None = None
    max_nodata: float = 0.5

    def windows(self, width: int, height: int) -> Iterator[Window]:
        """Full-size windows over a raster (the last row and column shifted back inside)."""
        stride = self.stride or self.size
        if stride < 1:
            raise ConfigError(f"`stride` {stride} px must be at least 1")
        if self.size > min(width, height):
            raise ConfigError(f"chip size {self.size} px does not fit the {width} x {height} px raster; pass a "
                              f"smaller `chip_size`, at most {min(width, height)}")
        if stride < self.size:
            return sliding_windows(width, height, self.size, self.size - stride)
        return (Window(c, r, self.size, self.size) for r in range(0, height - self.size + 1, stride)
                for c in range(0, width - self.size + 1, stride))


@dataclasses.dataclass(frozen=True)
class CloudRule:
    """A chip is cloudy when cloud covers at least `cloudy_if` of its pixels.

    Cloud pixels: `qa_bits` (low, high) of a quality band equal `qa_value` (Landsat-8 pre-collection BQA: bits 14-15
    == 3, high-confidence cloud); with `qa_bits` None, any non-zero mask value is cloud.
    """

    cloudy_if: float = 0.05
    qa_bits: tuple[int, int] | None = (14, 15)
    qa_value: int = 3

    def cloud(self, mask: np.ndarray) -> np.ndarray:
        """Boolean cloud pixels of a mask / QA array."""
        if self.qa_bits is None:
            return np.asarray(mask != 0)
        low, high = self.qa_bits
        field = (mask.astype(np.int64) >> low) & ((1 << (high - low + 1)) - 1)
        return np.asarray(field == self.qa_value)

    def label(self, mask: np.ndarray) -> list[str]:
        """["cloudy"] or ["clear"] for one chip's mask window."""
        return [CLOUD_CLASSES[int(self.cloud(mask).mean() >= self.cloudy_if)]]


def _spec(src: DatasetReader, indexes: Sequence[int] | None, names: Sequence[str] | None,
          given: BandUnits | None) -> BandSpec:
    spec = band_spec_for(src, indexes, given)
    if names:
        if len(names) != spec.count:
            raise ConfigError(f"`band_names` gives {len(names)} name(s) {list(names)} for {spec.count} band(s)")
        spec = dataclasses.replace(spec, names=tuple(names), source_count=0)
    return spec


def cut_chips(image: str | Path, grid: ChipGrid, labeller: Callable[[Window], list[str] | None],
              classes: Sequence[str], multi_label: bool = False, indexes: Sequence[int] | None = None,
              band_names: Sequence[str] | None = None, source: dict[str, object] | None = None,
              given: BandUnits | None = None) -> ChipSet:
    """Cut `grid` chips from `image` in physical units (scale and offset from `given`, else the file's metadata);
    `labeller(window)` names each chip's classes (None: leave the chip out)."""
    images, label_lists, ids, boxes = [], [], [], []
    with open_raster(image) as src:
        spec = _spec(src, indexes, band_names, given)
        windows = list(grid.windows(src.width, src.height))
        for window in track(windows, description="cutting chips", transient=True):
            chip, valid = read_chip_window(src, window, spec)
            if 1 - valid > grid.max_nodata:
                continue
            labels = labeller(window)
            if not labels:
                continue
            images.append(chip)
            label_lists.append(labels)
            ids.append(f"{image}#{int(window.col_off)},{int(window.row_off)}")
            boxes.append(rio_windows.bounds(window, src.transform))
        crs = src.crs.to_string()
    if not images:
        raise LabelError(f"no chip of {grid.size} px from {image} got a label; check that the labels overlap the "
                         "image, or lower `min_labelled` / `chip_size`")
    lookup = {name: i for i, name in enumerate(classes)}
    targets = np.zeros((len(images), len(classes)), dtype=np.float32)
    for row, labels in enumerate(label_lists):
        targets[row, [lookup[n] for n in labels]] = 1.0
    info = {"image": str(Path(image).resolve()), "chip_size": grid.size, "stride": grid.stride or grid.size,
            **(source or {})}
    return ChipSet(np.stack(images), targets, list(classes), spec, ids, np.array(boxes, dtype=np.float64),
                   [crs] * len(images), multi_label, info)


def chips_from_cloud_mask(image: str | Path, mask: str | Path, rule: CloudRule, grid: ChipGrid,
                          indexes: Sequence[int] | None = None, band_names: Sequence[str] | None = None,
                          given: BandUnits | None = None) -> ChipSet:
    """Clear / cloudy chips of `image`, labelled by the cloud cover of `mask` (a QA band or a binary mask)."""
    with open_raster(image) as src, open_raster(mask) as mask_src, \
            aligned(mask_src, src, Resampling.nearest) as view:

        def labeller(window: Window) -> list[str]:
            return rule.label(view.read(1, window=window))

        chips = cut_chips(image, grid, labeller, CLOUD_CLASSES, False, indexes, band_names,
                          {"kind": "cloud-mask", "mask": str(Path(mask).resolve()), "cloudy_if": rule.cloudy_if,
                           "qa_bits": list(rule.qa_bits) if rule.qa_bits else None, "qa_value": rule.qa_value},
                          given)
    counts = chips.counts()
    if min(counts.values()) == 0:
        raise LabelError(f"every chip of {image} is {max(counts, key=lambda k: counts[k])} under `cloudy_if` "
                         f"{rule.cloudy_if} (counts {counts}); a gate needs both classes: change `cloudy_if` or "
                         "check the `qa_bits` of the mask")
    return chips


def _class_names(label_src: DatasetReader) -> dict[int, str]:
    """Mask value -> class name from a label raster's `classes` tag (values name themselves when absent)."""
    table = table_from_tags(label_src.tags(), str(label_src.name))
    named = {c.value: c.name for c in table.classes} if table else {}
    return {v: named.get(v, str(v)) for v in range(IGNORE_VALUE)}


def _label_reader(labels: str | Path, src: DatasetReader, class_field: str | None,
                  stack: ExitStack) -> tuple[Callable[[Window], np.ndarray], dict[int, str]]:
    """A function reading class values (IGNORE_VALUE = unlabelled) of a window of `src`, and value -> name."""
    if Path(labels).suffix.lower() in (".tif", ".tiff", ".vrt"):
        label_src = stack.enter_context(open_raster(labels))
        view = stack.enter_context(aligned(label_src, src, Resampling.nearest))
        nodata = label_src.nodata

        def read_raster(window: Window) -> np.ndarray:
            data = view.read(1, window=window)
            unlabelled = (data == nodata) | ~np.isfinite(data) | (data >= IGNORE_VALUE) | (data < 0)
            return np.where(unlabelled, IGNORE_VALUE, data)

        return read_raster, _class_names(label_src)
    features = read_features(labels, src.crs)
    if class_field is None:
        raise LabelError(f"pass `class_field` to say which property of {labels} names each polygon's class; "
                         f"its properties are {sorted(features.properties[0]) if features.properties else []}")
    table = table_from_field(features, class_field, background=False)
    values = class_values(features, table, class_field)
    tree = shapely.STRtree(features.geometries)
    transform = src.transform

    def read_polygons(window: Window) -> np.ndarray:
        return burn_window(features.geometries, values, tree, transform, window, IGNORE_VALUE)

    return read_polygons, {c.value: c.name for c in table.classes}


def _chip_classes(counts: np.ndarray, size: int, min_labelled: float, presence: float | None) -> list[int] | None:
    """Class values of one chip from its per-value pixel counts (majority, or every class above `presence`)."""
    labelled = counts.sum()
    if labelled == 0 or labelled < min_labelled * size * size:
        return None
    if presence is None:
        return [int(counts.argmax())]
    return [int(v) for v in np.flatnonzero(counts >= presence * labelled)]


def chips_from_labels(image: str | Path, labels: str | Path, grid: ChipGrid, class_field: str | None = None,
                      min_labelled: float = 0.5, presence: float | None = None,
                      indexes: Sequence[int] | None = None, band_names: Sequence[str] | None = None,
                      given: BandUnits | None = None) -> ChipSet:
    """Chips labelled by the classes of a label raster or polygons: the majority class of the labelled pixels, or
    with `presence` every class covering at least that share of them (multi-label). Chips with less than
    `min_labelled` of their pixels labelled are left out."""
    with ExitStack() as stack:
        src = stack.enter_context(open_raster(image))
        read_values, names = _label_reader(labels, src, class_field, stack)

        def labeller(window: Window) -> list[str] | None:
            data = read_values(window)
            counts = np.bincount(data[data != IGNORE_VALUE].ravel().astype(np.int64), minlength=IGNORE_VALUE)
            chosen = _chip_classes(counts[:IGNORE_VALUE], grid.size, min_labelled, presence)
            return None if chosen is None else [str(v) for v in chosen]

        raw = cut_chips(image, grid, labeller, [str(v) for v in range(IGNORE_VALUE)], presence is not None,
                        indexes, band_names, {"kind": "labels", "labels": str(Path(labels).resolve()),
                                              "class_field": class_field, "min_labelled": min_labelled,
                                              "presence": presence}, given)
    return _compact_classes(raw, names)


def _compact_classes(chips: ChipSet, names: dict[int, str]) -> ChipSet:
    """Keep only the class columns that occur, renamed from mask values to class names."""
    present = np.flatnonzero(chips.targets.sum(axis=0) > 0)
    if len(present) < 2:
        raise LabelError(f"the chips carry a single class {[names.get(int(v), str(v)) for v in present]}; a "
                         "classifier needs at least two: check the labels, `chip_size` and `min_labelled`")
    return dataclasses.replace(chips, targets=chips.targets[:, present],
                               classes=[names.get(int(v), str(v)) for v in present])


def describe(chips: ChipSet) -> str:
    """One line: chip count, size, bands and per-class counts."""
    counts = ", ".join(f"{k} {v}" for k, v in chips.counts().items())
    return (f"{len(chips)} chips of {chips.chip_size} px, {chips.bands.count} band(s) {list(chips.bands.names)}: "
            f"{counts}")
