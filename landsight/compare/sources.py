"""The two sides of a comparison: the prediction (class raster, probability raster or polygons) and the open data."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landsight.errors import ConfigError, LabelError, RasterError
from landsight.imagery.io import read_valid_mask, read_window
from landsight.imagery.windows import all_windows
from landsight.labels.classes import ClassTable
from landsight.labels.polygonize import by_value, polygonize
from landsight.labels.rasterize import burn_window, class_table_of
from landsight.labels.vector_formats import is_vector
from landsight.labels.vectors import Features, read_features

log = logging.getLogger(__name__)

PredictionKind = Literal["classes", "probability", "polygons"]


def is_probability(src: DatasetReader) -> bool:
    """Float bands, scaled bands (predict stores p * 250 as uint8) or bands described "p(class)"."""
    described = all((d or "").startswith("p(") for d in src.descriptions)
    return np.dtype(src.dtypes[0]).kind == "f" or any(scale != 1.0 for scale in src.scales) or described


@dataclasses.dataclass
class Prediction:
    """How to read the predicted foreground of one class window by window on the grid raster."""

    kind: PredictionKind
    class_name: str
    value: int | None = None
    """Class value (class rasters; None = any non-zero value) or 0-based band (multi-band probabilities)."""
    threshold: float = 0.5
    polygons: np.ndarray | None = None
    tree: shapely.STRtree | None = None

    def foreground(self, src: DatasetReader, window: Window) -> tuple[np.ndarray, np.ndarray]:
        """(predicted foreground, valid) boolean arrays of `window`; `src` is the grid raster."""
        valid = read_valid_mask(src, window)
        if self.polygons is not None and self.tree is not None:
            ones = np.ones(len(self.polygons), dtype=np.uint8)
            burnt = burn_window(self.polygons, ones, self.tree, src.transform, window, 0)
            return burnt.astype(bool) & valid, valid
        data = read_window(src, window)
        if self.kind == "classes":
            band = data[0]
            fg = band != 0 if self.value is None else band == self.value
        elif data.shape[0] == 1:
            fg = data[0] * src.scales[0] + src.offsets[0] >= self.threshold
        else:
            fg = np.argmax(data, axis=0) == self.value
        return fg & valid, valid


def resolve_prediction(src: DatasetReader, pred_path: str | Path, class_name: str | None,
                       threshold: float = 0.5) -> Prediction:
    """Decide how to read `pred_path`: vector polygons (read on `src`, the reference image) or a raster (`src`)."""
    if is_vector(pred_path):
        features = read_features(pred_path, src.crs)
        name, keep = _vector_class(features, class_name, pred_path)
        polygons = features.geometries[keep]
        return Prediction("polygons", name, polygons=polygons, tree=shapely.STRtree(polygons))
    table = class_table_of(src)
    if is_probability(src):
        return _probability(src, table, class_name, threshold)
    if src.count != 1:
        raise RasterError(f"{src.name} has {src.count} integer bands; compare needs a 1-band class mask or float "
                          "probabilities from `landsight predict`, or polygons from `landsight vectorize`")
    if class_name is None:
        foreground = [c for c in table.classes if c.name != "background"] if table else []
        if table and len(foreground) != 1:
            raise ConfigError(f"{src.name} has classes {table.names}; pass `class_name` with one of them")
        return Prediction("classes", foreground[0].name if foreground else "foreground",
                          foreground[0].value if foreground else None)
    if table and class_name in table.names:
        return Prediction("classes", class_name, table.value_of(class_name))
    if class_name.isdigit():
        names_by_value = {c.value: c.name for c in table.classes} if table else {}
        return Prediction("classes", names_by_value.get(int(class_name), class_name), int(class_name))
    names = table.names if table else "none stored (pass the class value as `class_name`, e.g. 1)"
    raise ConfigError(f"`class_name` {class_name!r} is not a class of {src.name}; its classes: {names}")


def _vector_class(features: Features, class_name: str | None, path: str | Path) -> tuple[str, np.ndarray]:
    """The class name and which polygons belong to it: all, or those whose `class` (or `value`) property, as
    `landsight vectorize` writes them, names it."""
    if not features.properties or "class" not in features.properties[0]:
        return class_name or "foreground", np.ones(len(features), dtype=bool)
    classes = [str(c) for c in features.field("class")]
    values = [str(p.get("value")) for p in features.properties]
    if class_name is None:
        distinct = sorted(set(classes) - {"background"})
        if len(distinct) != 1:
            raise ConfigError(f"{path} holds polygons of classes {distinct}; pass `class_name` with one of them")
        class_name = distinct[0]
    keep = np.array([class_name in (c, v) for c, v in zip(classes, values, strict=True)], dtype=bool)
    if not keep.any():
        raise ConfigError(f"`class_name` {class_name!r} matches no polygon of {path}; its classes: "
                          f"{sorted(set(classes))}")
    return class_name, keep


def _probability(src: DatasetReader, table: ClassTable | None, class_name: str | None,
                 threshold: float) -> Prediction:
    """A probability raster: one band thresholded, or several bands (one per class) compared by argmax."""
    if src.count == 1:
        return Prediction("probability", class_name or "foreground", threshold=threshold)
    names = table.names if table and len(table) == src.count else [
        (d or "").removeprefix("p(").removesuffix(")") for d in src.descriptions]
    if class_name is None and src.count == 2 and names[0] == "background":
        class_name = names[1] or "2"
    if class_name is not None and class_name in names:
        return Prediction("probability", class_name, names.index(class_name))
    if class_name and class_name.isdigit() and 1 <= int(class_name) <= src.count:
        return Prediction("probability", names[int(class_name) - 1] or class_name, int(class_name) - 1)
    raise ConfigError(f"`class_name` {class_name!r} does not name one of the {src.count} probability bands of "
                      f"{src.name} ({names}); pass a band name or a 1-based band number")


def footprint(src: DatasetReader, block: int = 1024) -> shapely.Geometry:
    """The area where `src` has valid pixels: its bounds, or the polygonized valid mask when it has nodata."""
    if src.nodata is None and all(flag.name == "all_valid" for flag in src.mask_flag_enums[0]):
        return shapely.box(*src.bounds)
    chunks = ((w, read_valid_mask(src, w).astype(np.uint8), None) for w in all_windows(src, block))
    parts = by_value(polygonize(chunks, src.width, src.height), src.transform).get(1, np.asarray([], dtype=object))
    return shapely.union_all(parts) if len(parts) else shapely.Polygon()


def prediction_polygons(src: DatasetReader, prediction: Prediction, block: int = 1024) -> np.ndarray:
    """Polygons of the predicted foreground in `src`'s CRS (the vector prediction as read, or polygonized)."""
    if prediction.polygons is not None:
        return prediction.polygons
    chunks = ((w, prediction.foreground(src, w)[0].astype(np.uint8), None) for w in all_windows(src, block))
    return by_value(polygonize(chunks, src.width, src.height), src.transform).get(1, np.asarray([], dtype=object))


def read_open_data(path: str | Path, crs: CRS, extent: shapely.Geometry) -> tuple[Features, np.ndarray]:
    """Open-data features in `crs` that intersect `extent`, and their geometries clipped to it."""
    features = read_features(path, crs)
    keep = shapely.intersects(features.geometries, extent)
    if not keep.any():
        raise LabelError(f"no feature of {path} lies inside the prediction's extent "
                         f"{shapely.bounds(extent).round(1).tolist()} ({crs}); are they of the same place?")
    kept = Features(features.geometries[keep], [p for p, k in zip(features.properties, keep, strict=True) if k],
                    features.crs)
    clipped = shapely.make_valid(shapely.intersection(kept.geometries, extent))
    return kept, np.asarray(clipped, dtype=object)


def describe_raster(src: DatasetReader) -> dict[str, Any]:
    """Facts about a raster for provenance: size, CRS, pixel size and its tags (model provenance of predictions)."""
    return {"width": src.width, "height": src.height, "count": src.count, "crs": src.crs.to_string(),
            "pixel_size": [abs(src.transform.a), abs(src.transform.e)], "tags": src.tags()}
