"""Vector features -> label masks aligned pixel for pixel with an image, written window by window."""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import shapely
from affine import Affine
from rasterio import features as rio_features
from rasterio import windows as rio_windows
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landsight.errors import ConfigError, LabelError, RasterError
from landsight.imagery.io import check_readable, create_raster, open_raster, output_profile
from landsight.imagery.windows import block_windows
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.labels.vectors import Features, class_values, read_features
from landsight.outputs import atomic_path

log = logging.getLogger(__name__)


def burn(geometries: np.ndarray, values: np.ndarray, transform: Affine, shape: tuple[int, int], fill: int,
         all_touched: bool = False) -> np.ndarray:
    """Rasterize `geometries` with their `values` into a uint8 array of `shape`; later features win overlaps."""
    if len(geometries) == 0:
        return np.full(shape, fill, dtype=np.uint8)
    pairs = ((shapely.geometry.mapping(g), int(v)) for g, v in zip(geometries, values, strict=True))
    return rio_features.rasterize(pairs, out_shape=shape, transform=transform, fill=fill, dtype="uint8",
                                  all_touched=all_touched)


def check_overlap(features: Features, bounds: tuple[float, float, float, float], image: str | Path,
                  labels: str | Path) -> None:
    """Raise LabelError when no feature of `labels` intersects the image `bounds` (left, bottom, right, top)."""
    box = shapely.box(*bounds)
    if not shapely.intersects(features.geometries, box).any():
        lb = shapely.total_bounds(features.geometries).round(1).tolist()
        raise LabelError(f"no feature of the labels {labels} overlaps the image {image} (image bounds "
                         f"{[round(b, 1) for b in bounds]}, label bounds {lb} in {features.crs}); are they of the "
                         "same place?")


def rasterize_labels(image: str | Path, labels: str | Path, out: str | Path, table: ClassTable,
                     field: str | None = None, background: bool = True, all_touched: bool = False,
                     overwrite: bool = False, block: int = 1024, select: np.ndarray | None = None) -> dict[str, int]:
    """Write a uint8 mask aligned with `image`: class values, 0/background or IGNORE_VALUE where unlabelled.

    `select` (bool, one per feature of `labels` in file order) burns only those features. Returns pixel counts per
    class name (and "ignore").
    """
    if background and 0 not in table.values:
        raise LabelError("`background=True` needs a class with value 0 in the class table; add one named 'background'")
    check_readable(image)
    with open_raster(image) as src:
        features = read_features(labels, src.crs)
        check_overlap(features, tuple(src.bounds), image, labels)
        values = class_values(features, table, field)
        if select is not None:
            features = dataclasses.replace(features, geometries=features.geometries[select])
            values = values[select]
        tree = shapely.STRtree(features.geometries)
        fill = 0 if background else IGNORE_VALUE
        counts = np.zeros(256, dtype=np.int64)
        profile = output_profile(src, 1, "uint8", IGNORE_VALUE)
        with atomic_path(out, overwrite) as tmp, create_raster(tmp, profile) as dst:
            dst.write_colormap(1, table.colormap())
            dst.update_tags(classes=classes_tag(table), labels=str(labels), background=str(background))
            for window in block_windows(Window(0, 0, src.width, src.height), block):
                mask = burn_window(features.geometries, values, tree, src.transform, window, fill, all_touched)
                counts += np.bincount(mask.ravel(), minlength=256)
                dst.write(mask, 1, window=window)
    names = {c.value: c.name for c in table.classes}
    result = {names[v]: int(counts[v]) for v in table.values}
    result["ignore"] = int(counts[IGNORE_VALUE])
    return result


def burn_window(geometries: np.ndarray, values: np.ndarray, tree: shapely.STRtree, transform: Affine,
                window: Window, fill: int, all_touched: bool = False) -> np.ndarray:
    """Rasterize the features that intersect `window` of a raster with `transform`."""
    bounds = rio_windows.bounds(window, transform)
    hits = np.sort(tree.query(shapely.box(*bounds), predicate="intersects"))
    shape = (int(window.height), int(window.width))
    return burn(geometries[hits], values[hits], rio_windows.transform(window, transform), shape, fill, all_touched)


def classes_tag(table: ClassTable) -> str:
    """The `classes` tag written into masks: the class table as JSON (read back by `table_from_tags`)."""
    return json.dumps(table.to_list())


def table_from_tags(tags: Mapping[str, str], name: str = "the mask") -> ClassTable | None:
    """The class table stored in a mask's `classes` tag (JSON, or an older Python-literal list); None if absent."""
    text = tags.get("classes")
    if not text:
        return None
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise RasterError(f"the 'classes' tag of {name} is not a class list ({text[:80]!r}); rewrite it with "
                              "`landsight rasterize` or remove the tag") from exc
    try:
        return ClassTable.from_list(items)
    except ConfigError as exc:
        raise RasterError(f"the 'classes' tag of {name} is not a valid class table: {exc}") from exc


def class_table_of(src: DatasetReader) -> ClassTable | None:
    """The class table in a mask's `classes` tag (written by `rasterize` and `predict`), or None."""
    return table_from_tags(src.tags(), src.name)
