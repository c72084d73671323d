"""Chip sources on disk: a folder per class, a CSV list of chips with (multi-)labels, or BigEarthNet patch folders."""

from __future__ import annotations

import collections
import csv
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.progress import track

from landsight.classify.chips import IMAGE_SUFFIXES, ChipImage, ChipSet, read_chip, resize_chip
from landsight.errors import ConfigError, LabelError, RasterError
from landsight.imagery.bands import BandSpec, BandUnits

log = logging.getLogger(__name__)

BIGEARTHNET_BANDS = ("B02", "B03", "B04", "B08")
"""BigEarthNet bands read by default: the 10 m blue, green, red and near-infrared bands (120 x 120 px)."""

_LABEL_SEPARATORS = (";", "|")


def _chip_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_class_folders(root: Path) -> dict[str, list[Path]]:
    """{class name: chip files} for each sub-folder of `root`; empty folders and fewer than two classes raise."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise LabelError(f"{root} has no class sub-folders; arrange chips as {root}/<class>/<chip>.tif (one folder "
                         "per class), or pass a CSV of path,label rows")
    files = {p.name: _chip_files(p) for p in folders}
    empty = [name for name, paths in files.items() if not paths]
    if empty:
        raise LabelError(f"class folder(s) {[str(root / n) for n in empty]} hold no image chips (looked for "
                         f"{', '.join(IMAGE_SUFFIXES)}); add chips or remove the folder(s)")
    if len(files) < 2:
        raise LabelError(f"{root} has a single class folder {folders[0].name!r}; a classifier needs at least two "
                         f"classes, e.g. {root}/clear and {root}/cloudy")
    return files


def _read_all(paths: Sequence[Path], indexes: Sequence[int] | None, skip_unreadable: bool,
              given: BandUnits | None = None) -> tuple[list[ChipImage | None], list[str]]:
    """Read every chip; returns the chips (None where unreadable and skipped) and the error messages."""
    chips: list[ChipImage | None] = []
    errors = []
    for path in track(paths, description="reading chips", transient=True):
        try:
            chips.append(read_chip(path, indexes, given))
        except RasterError as exc:
            errors.append(str(exc))
            chips.append(None)
    if errors and not skip_unreadable:
        raise RasterError(f"{len(errors)} of {len(paths)} chip(s) cannot be read, e.g. {errors[:3]}; fix or remove "
                          "them, or pass `skip_unreadable=True` to leave them out")
    for message in errors:
        log.warning("skipped: %s", message)
    return chips, errors


def _check_band_counts(chips: Sequence[ChipImage], paths: Sequence[Path]) -> None:
    by_count: dict[int, list[Path]] = collections.defaultdict(list)
    for chip, path in zip(chips, paths, strict=True):
        by_count[chip.data.shape[0]].append(path)
    if len(by_count) > 1:
        detail = "; ".join(f"{n} band(s): {len(p)} chip(s), e.g. {p[0]}" for n, p in sorted(by_count.items()))
        raise RasterError(f"chips have different band counts ({detail}); every chip needs the same bands: convert "
                          "them, move the odd ones out, or pass `bands` with band numbers every chip has")


def common_size(chips: Sequence[ChipImage]) -> int:
    """The most frequent chip side (the longer side of each chip) in pixels."""
    sizes = collections.Counter(max(c.data.shape[1:]) for c in chips)
    return sizes.most_common(1)[0][0]


def assemble(chips: Sequence[ChipImage], paths: Sequence[Path], label_lists: Sequence[Sequence[str]],
             classes: Sequence[str], chip_size: int | None, multi_label: bool, source: dict[str, object]) -> ChipSet:
    """A ChipSet from read chips and their label lists; chips are resized to `chip_size` (default the common size)."""
    _check_band_counts(chips, paths)
    size = chip_size or common_size(chips)
    resized = [c.data.shape[1:] != (size, size) for c in chips]
    if any(resized):
        log.info("resized %d of %d chips to %d x %d px", sum(resized), len(chips), size, size)
    images = np.stack([resize_chip(c.data, size) for c in chips])
    targets = np.zeros((len(chips), len(classes)), dtype=np.float32)
    lookup = {name: i for i, name in enumerate(classes)}
    for row, labels in enumerate(label_lists):
        targets[row, [lookup[name] for name in labels]] = 1.0
    boxes = np.array([c.bounds if c.bounds else (np.nan,) * 4 for c in chips], dtype=np.float64).reshape(-1, 4)
    names, first = chips[0].names, chips[0].spec
    bands = BandSpec(tuple(range(1, len(names) + 1)), names, 0, first.scales if first else (),
                     first.offsets if first else (), first.units if first else "dn")
    return ChipSet(images, targets, list(classes), bands, [str(p) for p in paths], boxes, [c.crs for c in chips],
                   multi_label, {"kind": source.get("kind"), **source, "chip_size": size})


def load_class_folders(root: str | Path, chip_size: int | None = None, indexes: Sequence[int] | None = None,
                       skip_unreadable: bool = False, given: BandUnits | None = None) -> ChipSet:
    """Chips from `root/<class>/<chip files>` (single-label)."""
    root = Path(root)
    files = find_class_folders(root)
    paths = [p for name in files for p in files[name]]
    labels = [[name] for name in files for _ in files[name]]
    chips, _ = _read_all(paths, indexes, skip_unreadable, given)
    read = {i: c for i, c in enumerate(chips) if c is not None}
    return assemble(list(read.values()), [paths[i] for i in read],
                    [labels[i] for i in read], list(files), chip_size, False,
                    {"kind": "class-folders", "path": str(root.resolve())})


def _split_labels(text: str) -> list[str]:
    for sep in _LABEL_SEPARATORS:
        if sep in text:
            return [part.strip() for part in text.split(sep) if part.strip()]
    return [text.strip()] if text.strip() else []


def load_manifest(path: str | Path, chip_size: int | None = None, indexes: Sequence[int] | None = None,
                  skip_unreadable: bool = False, given: BandUnits | None = None) -> ChipSet:
    """Chips listed in a CSV with columns `path` and `label` (one class) or `labels` (several, separated by ; or |).

    Paths are relative to the CSV file. A `labels` column makes a multi-label set (BigEarthNet-style).
    """
    path = Path(path)
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    column = "labels" if rows and "labels" in rows[0] else "label"
    if not rows or "path" not in rows[0] or column not in rows[0]:
        raise LabelError(f"{path} needs a header with columns path and label (or labels) and at least one row")
    paths = [path.parent / r["path"] for r in rows]
    labels = [_split_labels(r[column]) for r in rows]
    unlabelled = [str(p) for p, lab in zip(paths, labels, strict=True) if not lab]
    if unlabelled:
        raise LabelError(f"{len(unlabelled)} row(s) of {path} have no label, e.g. {unlabelled[:3]}; fill or drop them")
    classes = sorted({name for lab in labels for name in lab})
    if len(classes) < 2:
        raise LabelError(f"{path} names a single class {classes}; a classifier needs at least two")
    chips, _ = _read_all(paths, indexes, skip_unreadable, given)
    read = {i: c for i, c in enumerate(chips) if c is not None}
    return assemble(list(read.values()), [paths[i] for i in read],
                    [labels[i] for i in read], classes, chip_size, column == "labels",
                    {"kind": "manifest", "path": str(path.resolve())})


def is_bigearthnet(root: Path) -> bool:
    """True when `root` holds BigEarthNet patch folders (each with a *_labels_metadata.json)."""
    return root.is_dir() and any(root.glob("*/*_labels_metadata.json"))


def _read_patch(folder: Path, bands: Sequence[str]) -> tuple[ChipImage, list[str]]:
    meta = json.loads(next(folder.glob("*_labels_metadata.json")).read_text())
    layers = []
    first: ChipImage | None = None
    for band in bands:
        files = list(folder.glob(f"*_{band}.tif"))
        if not files:
            raise RasterError(f"BigEarthNet patch {folder} has no *_{band}.tif; bands present: "
                              f"{sorted(p.stem.rsplit('_', 1)[-1] for p in folder.glob('*_B*.tif'))}")
        chip = read_chip(files[0])
        first = first or chip
        layers.append(resize_chip(chip.data, first.data.shape[-1])[0])
    assert first is not None
    return ChipImage(np.stack(layers), tuple(bands), first.crs, first.bounds), list(meta["labels"])


def load_bigearthnet(root: str | Path, bands: Sequence[str] = BIGEARTHNET_BANDS,
                     chip_size: int | None = None) -> ChipSet:
    """Multi-label chips from BigEarthNet patch folders (band GeoTIFFs + labels metadata JSON)."""
    root = Path(root)
    folders = sorted(p.parent for p in root.glob("*/*_labels_metadata.json"))
    read = [_read_patch(folder, bands) for folder in folders]
    labels = [lab for _, lab in read]
    classes = sorted({name for lab in labels for name in lab})
    if len(classes) < 2:
        raise LabelError(f"the BigEarthNet patches in {root} carry a single label {classes}; need at least two")
    return assemble([c for c, _ in read], folders, labels, classes, chip_size, True,
                    {"kind": "bigearthnet", "path": str(root.resolve()), "bands": list(bands)})


def load_chip_source(data: str | Path, chip_size: int | None = None, indexes: Sequence[int] | None = None,
                     skip_unreadable: bool = False, given: BandUnits | None = None) -> ChipSet:
    """Chips from a class-folder tree, a BigEarthNet folder or a CSV list, whichever `data` is."""
    path = Path(data)
    if not path.exists():
        raise ConfigError(f"training data {path} not found; pass a folder of class folders, a CSV of chips, or a "
                          "raster with `cloud_mask` or `labels`")
    if path.is_file() and path.suffix.lower() == ".csv":
        return load_manifest(path, chip_size, indexes, skip_unreadable, given)
    if path.is_dir() and is_bigearthnet(path):
        return load_bigearthnet(path, chip_size=chip_size)
    if path.is_dir():
        return load_class_folders(path, chip_size, indexes, skip_unreadable, given)
    raise ConfigError(f"{path} is a file; a raster needs a rule (`cloud_mask` MASK or `labels` LABELS), chips a "
                      "folder per class or a CSV")
