"""Turn image/label pairs into training data: aligned masks, a blocked split, band spec and normalization."""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import numpy as np
from affine import Affine
from rasterio.io import DatasetReader
from rasterio.windows import Window, from_bounds

from landsight.config import TrainConfig
from landsight.data.datasets import RasterPair
from landsight.errors import ConfigError, LabelError, RasterError
from landsight.imagery.bands import (
    BandSpec,
    BandUnits,
    Normalization,
    band_spec_for,
    check_units,
    compute_normalization,
    reflectance_normalization,
    sample_physical,
)
from landsight.imagery.io import check_readable, open_raster
from landsight.imagery.windows import (
    Box,
    Split,
    block_windows,
    blocked_split,
    box_window,
    check_chip_fits,
    sliding_windows,
    train_positions,
)
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.labels.rasterize import rasterize_labels
from landsight.labels.vectors import class_values, read_features
from landsight.outputs import output_folder
from landsight.train.polygon_split import choose_validation_polygons, polygon_split
from landsight.train.sampling import SPARSE_SHARE, class_positions, labelled_share

log = logging.getLogger(__name__)


@dataclasses.dataclass
class TrainingData:
    """Aligned raster pairs, their splits and the chip positions training may draw from."""

    pairs: list[RasterPair]
    splits: list[Split]
    positions: list[list[Box]]
    bands: BandSpec
    normalization: Normalization
    classes: ClassTable
    sources: list[dict[str, str]]
    recipe: dict[str, str]
    """The resolved `sampling` and `validation` (see `TrainConfig`), with why."""
    by_class: list[list[np.ndarray]] | None = None
    """With `sampling` "labels": per pair, per class channel, the indexes of `positions` holding that class."""

    @property
    def val_pairs(self) -> list[RasterPair]:
        """The pairs validation reads: held-out polygons' own mask where validation is by polygon."""
        return [RasterPair(p.image, p.val_mask or p.mask) for p in self.pairs]

    def fingerprint(self) -> str:
        """sha256 of the data list (paths, classes, bands), stored with the model."""
        text = json.dumps({"sources": self.sources, "classes": self.classes.to_list(),
                           "bands": self.bands.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    @functools.cached_property
    def class_pixels(self) -> list[int]:
        """Labelled training pixels of each class (outside the validation blocks), read by 512 px windows."""
        lut = self.classes.index_lut()
        counts = np.zeros(len(self.classes), dtype=np.int64)
        for pair, split in zip(self.pairs, self.splits, strict=True):
            with open_raster(pair.mask) as src:
                for window in block_windows(box_window(split.region), 512):
                    channels = lut[src.read(1, window=window)][split.outside_validation(window)]
                    counts += np.bincount(channels[channels != IGNORE_VALUE], minlength=256)[:len(counts)]
        return counts.tolist()

    def sizes(self) -> tuple[int, int]:
        """(number of training chip positions, number of validation chips)."""
        return sum(len(p) for p in self.positions), sum(len(s.val) for s in self.splits)


def pixel_region(bounds: tuple[float, float, float, float] | None, src: DatasetReader) -> Box | None:
    """The pixel box of `bounds` (left, bottom, right, top in the image CRS), clipped to the image."""
    if bounds is None:
        return None
    window = from_bounds(*bounds, transform=src.transform).round_offsets().round_lengths()
    col0, row0 = max(0, int(window.col_off)), max(0, int(window.row_off))
    col1 = min(src.width, int(window.col_off + window.width))
    row1 = min(src.height, int(window.row_off + window.height))
    if col1 <= col0 or row1 <= row0:
        raise ConfigError(f"bounds {bounds} do not overlap the image {src.name} (bounds {tuple(src.bounds)})")
    return (col0, row0, col1, row1)


def _mask_for(image: str, labels: str, work_dir: Path, i: int, table: ClassTable, field: str | None,
              background: bool) -> str:
    """Rasterize vector labels into work_dir (or accept an aligned mask raster)."""
    if Path(labels).suffix.lower() in (".tif", ".tiff", ".vrt"):
        with open_raster(image) as src, open_raster(labels) as lab:
            if (lab.width, lab.height, lab.transform, lab.crs) != (src.width, src.height, src.transform, src.crs):
                raise LabelError(f"mask {labels} is not aligned with {image}; rasterize labels with "
                                 "`landsight rasterize IMAGE LABELS -o MASK.tif` or pass vector labels")
        return labels
    mask = work_dir / f"mask-{i}.tif"
    counts = rasterize_labels(image, labels, mask, table, field, background, overwrite=True)
    labelled = sum(v for k, v in counts.items() if k not in ("ignore", "background"))
    if labelled == 0:
        raise LabelError(f"labels {labels} cover no pixel of {image} with a class; check CRS and class field")
    log.info("rasterized %s: %s", labels, counts)
    return str(mask)


def prepare_training_data(pairs: Sequence[tuple[str, str]], work_dir: Path, table: ClassTable, field: str | None,
                          background: bool, config: TrainConfig, band_indexes: Sequence[int] | None = None,
                          bounds: tuple[float, float, float, float] | None = None,
                          given: BandUnits | None = None) -> TrainingData:
    """Check every pair, rasterize labels, split each image into blocked train/validation, compute statistics (or,
    for images in reflectance, take the fixed physical normalization). Scales and offsets come from `given`, else
    each file's metadata; every image must convert alike."""
    if not pairs:
        raise ConfigError("no image/label pairs given; pass IMAGE LABELS or a dataset config with 'pairs'")
    output_folder(work_dir)
    spec: BandSpec | None = None
    raster_pairs, splits, positions, shares, validations = [], [], [], [], []
    for i, (image, labels) in enumerate(pairs):
        check_readable(image)
        with open_raster(image) as src:
            this_spec = band_spec_for(src, band_indexes, given)
            if spec is not None and this_spec.count != spec.count:
                raise RasterError(f"{image} gives {this_spec.count} bands but {pairs[0][0]} gives {spec.count}; "
                                  "every training image needs the same bands (use `bands`)")
            if spec is not None and (this_spec.scales, this_spec.offsets, this_spec.units) != (
                    spec.scales, spec.offsets, spec.units):
                raise RasterError(f"{image} has band scales {list(this_spec.scales)}, offsets "
                                  f"{list(this_spec.offsets)} ({this_spec.units}) but {pairs[0][0]} has "
                                  f"{list(spec.scales)}, {list(spec.offsets)} ({spec.units}); give `scale`, `offset` "
                                  "and `units` that hold for every training image")
            if this_spec.units == "reflectance":
                check_units(this_spec, this_spec, image, sample_physical(src, this_spec))
            spec = spec or this_spec
            region = pixel_region(bounds, src) or (0, 0, src.width, src.height)
            transform = src.transform
        check_chip_fits(region, config.chip_size)
        mask = _mask_for(image, labels, work_dir, i, table, field, background)
        shares.append(labelled_share(mask, region))
        validation = _validation(config, labels, shares[-1], background)
        held_out = (_polygon_split(image, labels, work_dir, i, table, field, background, config, region, transform)
                    if validation == "polygons" else None)
        if held_out is not None:
            pair, split = held_out
        else:
            validation = "blocks"
            pair = RasterPair(image, mask)
            split = blocked_split(region[2], region[3], config.chip_size, config.val_fraction, config.seed + i, region)
        raster_pairs.append(pair)
        splits.append(split)
        validations.append(validation)
        positions.append(train_positions(split))
        log.info("%s: labels cover %.1f %% of the area; %s, %d training chip positions", image, 100 * shares[-1],
                 split.summary(), len(positions[-1]))
    assert spec is not None
    if spec.units == "reflectance":
        normalization = reflectance_normalization(spec.count)
    else:
        normalization, spec = _normalization(raster_pairs, splits, spec)
    sources = [{"image": str(Path(a).resolve()), "labels": str(Path(b).resolve())} for a, b in pairs]
    share = float(np.mean(shares))
    sampling = config.sampling if config.sampling != "auto" else "labels" if share < SPARSE_SHARE else "uniform"
    recipe = {"sampling": sampling, "validation": ",".join(sorted(set(validations))),
              "labelled_share": f"{share:.4f}"}
    log.info("training chips: %s; validation: %s", "around labelled pixels, each class alike"
             if sampling == "labels" else "anywhere in the training area", recipe["validation"])
    by_class = None
    if sampling == "labels":
        lut = table.index_lut()
        by_class = [class_positions(pair.mask, split, boxes, lut, len(table))
                    for pair, split, boxes in zip(raster_pairs, splits, positions, strict=True)]
        if not any(len(k) for pair_classes in by_class for k in pair_classes):
            raise LabelError("no training chip holds a labelled pixel outside validation; add labels or lower "
                             "`val_fraction`")
    return TrainingData(raster_pairs, splits, positions, spec, normalization, table, sources, recipe, by_class)


def _validation(config: TrainConfig, labels: str, share: float, background: bool) -> str:
    """"blocks" or "polygons": as configured, or polygons for sparse vector labels."""
    vector = Path(labels).suffix.lower() not in (".tif", ".tiff", ".vrt")
    if config.validation == "polygons" and not vector:
        raise ConfigError(f"`validation` polygons needs vector labels, but {labels} is a raster mask; use blocks")
    if config.validation == "polygons" and background:
        raise ConfigError("`validation` polygons needs unlabelled pixels ignored (`background` False): a held-out "
                          "polygon would otherwise train as background; use blocks")
    if config.validation != "auto":
        return config.validation
    return "polygons" if vector and share < SPARSE_SHARE and config.val_fraction > 0 else "blocks"


def _polygon_split(image: str, labels: str, work_dir: Path, i: int, table: ClassTable, field: str | None,
                   background: bool, config: TrainConfig, region: Box,
                   transform: Affine) -> tuple[RasterPair, Split] | None:
    """Hold out a share of each class's polygons: the training mask keeps the others, a second mask holds them,
    and validation chips cover them. None (validation by blocks) when `validation` is auto and no class has two
    polygons."""
    with open_raster(image) as src:
        features = read_features(labels, src.crs)
    held_out = choose_validation_polygons(class_values(features, table, field), config.val_fraction, config.seed + i)
    if not held_out.any():
        if config.validation == "auto":
            log.info("%s: no class has two polygons to hold one out; validation by blocks", labels)
            return None
        raise LabelError(f"{labels}: no class has two polygons, so none can be held out for validation; add "
                         "labels, or use `validation` blocks")
    mask, val_mask = work_dir / f"mask-{i}.tif", work_dir / f"mask-val-{i}.tif"
    rasterize_labels(image, labels, mask, table, field, background, overwrite=True, select=~held_out)
    rasterize_labels(image, labels, val_mask, table, field, background, overwrite=True, select=held_out)
    log.info("%s: %d of %d polygons held out for validation", labels, int(held_out.sum()), len(held_out))
    split = polygon_split(features.geometries[held_out], transform, region, config.chip_size)
    return RasterPair(image, str(mask), str(val_mask)), split


def _normalization(pairs: Sequence[RasterPair], splits: Sequence[Split],
                   spec: BandSpec) -> tuple[Normalization, BandSpec]:
    """Band statistics over each training region, read by 512 px windows, and `spec` with the fill values found."""
    with ExitStack() as stack:
        sources = []
        for pair, split in zip(pairs, splits, strict=True):
            src = stack.enter_context(open_raster(pair.image))
            col0, row0, col1, row1 = split.region
            windows = [Window(w.col_off + col0, w.row_off + row0, w.width, w.height)
                       for w in sliding_windows(col1 - col0, row1 - row0, 512)]
            sources.append((src, windows))
        return compute_normalization(sources, spec)
