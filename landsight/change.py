"""Change between two dates of one area: a change mask and appeared/disappeared polygons, robust to small
misregistration.

Two inputs are compared either as class rasters (predictions: a class *appeared* where the after date has it and no
before pixel within `radius` has it; *disappeared* the other way round) or as images (bands normalized per date, a
pixel changed when it differs from every pixel within `radius` on the other date by more than `threshold` standard
deviations, RMS over bands). Pass `model` to predict both images first. Never imports torch at module import.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import Any, Literal

import numpy as np
import shapely
from rasterio.enums import Resampling
from rasterio.features import sieve
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landsight.errors import ConfigError, MissingExtraError, RasterError
from landsight.geo import pixel_size_m
from landsight.imagery.bands import band_spec_for, compute_normalization
from landsight.imagery.io import aligned, create_raster, open_raster, output_profile, read_padded
from landsight.imagery.windows import all_windows
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.labels.polygonize import Polygonizer, by_value
from landsight.labels.rasterize import class_table_of
from landsight.labels.vector_out import CrsRequest, check_request, keep_request
from landsight.labels.vectors import Features
from landsight.outputs import atomic_path
from landsight.provenance import describe_input, provenance
from landsight.report.files import write_json, write_layers
from landsight.report.html import Section, report_page, table
from landsight.review import ImageLayer, ReviewItems, VectorLayer, render_image, render_palette, write_review_page

log = logging.getLogger(__name__)

Mode = Literal["auto", "image", "classes"]
COLORS = {"appeared": "#ff4fa3", "disappeared": "#2ca02c", "brighter": "#ff4fa3", "darker": "#2ca02c"}


@dataclasses.dataclass(frozen=True)
class ChangeParams:
    """radius: misregistration tolerated, pixels; threshold: image-mode change level (RMS z-score difference);
    min_pixels: smaller change patches are dropped; bands: 1-based image bands (default all); block: window px."""

    radius: int = 1
    threshold: float = 1.5
    min_pixels: int = 4
    bands: tuple[int, ...] | None = None
    block: int = 512

    def __post_init__(self) -> None:
        if not 0 <= self.radius <= 16 or self.threshold <= 0 or self.min_pixels < 1 or self.block < 16:
            raise ConfigError(f"invalid change parameters {self}: need 0 <= radius <= 16 px, threshold > 0, "
                              "min_pixels >= 1 and block >= 16")

    @property
    def halo(self) -> int:
        """Pixels read around each window: the search radius plus room to judge patch sizes."""
        return self.radius + self.min_pixels


def is_class_raster(src: DatasetReader) -> bool:
    """A 1-band integer raster carrying a class table or a colour map (a prediction or label mask)."""
    if src.count != 1 or np.dtype(src.dtypes[0]).kind not in "iu":
        return False
    if class_table_of(src) is not None:
        return True
    with contextlib.suppress(ValueError):
        return bool(src.colormap(1))
    return False


def _shifts(radius: int) -> list[tuple[int, int]]:
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def _view(array: np.ndarray, r: int, dy: int, dx: int) -> np.ndarray:
    """The core region (array without its `r`-pixel border) shifted by (dy, dx); works on (..., H, W)."""
    h, w = array.shape[-2:]
    return array[..., r + dy:h - r + dy, r + dx:w - r + dx]


def class_changes(before: np.ndarray, after: np.ndarray, valid: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """(appeared, disappeared) class-value arrays on the core region; 0 = no change, 0 is background.

    A pixel's after class "appeared" when no valid before pixel within `r` px has it (and vice versa).
    """
    core_b, core_a, core_v = _view(before, r, 0, 0), _view(after, r, 0, 0), _view(valid, r, 0, 0)
    seen_b = np.zeros(core_a.shape, dtype=bool)
    seen_a = np.zeros(core_a.shape, dtype=bool)
    for dy, dx in _shifts(r):
        near_ok = _view(valid, r, dy, dx)
        seen_b |= (_view(before, r, dy, dx) == core_a) & near_ok
        seen_a |= (_view(after, r, dy, dx) == core_b) & near_ok
    appeared = np.where(core_v & ~seen_b & (core_a != 0), core_a, 0)
    disappeared = np.where(core_v & ~seen_a & (core_b != 0), core_b, 0)
    return appeared.astype(np.uint8), disappeared.astype(np.uint8)


def image_changes(before: np.ndarray, after: np.ndarray, valid: np.ndarray, r: int, threshold: float) -> np.ndarray:
    """Core-region labels: 0 unchanged, 1 changed and brighter after, 2 changed and darker after.

    `before`/`after` are normalized (C, H, W) arrays. The distance of a pixel to the other date is the smallest RMS
    band difference to any valid pixel within `r` px there, taken in both directions (objects appearing or vanishing).
    """
    core_b, core_a, core_v = _view(before, r, 0, 0), _view(after, r, 0, 0), _view(valid, r, 0, 0)
    d_ab = np.full(core_v.shape, np.inf, dtype=np.float32)
    d_ba = np.full(core_v.shape, np.inf, dtype=np.float32)
    for dy, dx in _shifts(r):
        near_ok = _view(valid, r, dy, dx)
        d_ab = np.minimum(d_ab, np.where(near_ok, _rms(core_a - _view(before, r, dy, dx)), np.inf))
        d_ba = np.minimum(d_ba, np.where(near_ok, _rms(core_b - _view(after, r, dy, dx)), np.inf))
    changed = core_v & (np.maximum(d_ab, d_ba) > threshold)
    brighter = (core_a - core_b).mean(axis=0) > 0
    return np.where(changed, np.where(brighter, 1, 2), 0).astype(np.uint8)


def _rms(diff: np.ndarray) -> np.ndarray:
    return np.asarray(np.sqrt((diff.astype(np.float32) ** 2).mean(axis=0)), dtype=np.float32)


def _sieved(labels: np.ndarray, min_pixels: int) -> np.ndarray:
    """`labels` with change patches smaller than `min_pixels` (8-connected) removed."""
    if min_pixels <= 1 or not labels.any():
        return labels
    kept = sieve((labels > 0).astype(np.uint8), size=min_pixels, connectivity=4).astype(bool)
    return np.where(kept, labels, 0).astype(np.uint8)


WindowFn = Any
"""window -> ({layer name: (H, W) uint8 labels}, (H, W) valid)."""


def _class_reader(before: Any, after: Any, params: ChangeParams) -> WindowFn:
    def read(window: Window) -> tuple[dict[str, np.ndarray], np.ndarray]:
        b, vb = read_padded(before, window, params.halo, [1])
        a, va = read_padded(after, window, params.halo, [1])
        appeared, disappeared = class_changes(b[0], a[0], vb & va, params.radius)
        return {"appeared": appeared, "disappeared": disappeared}, (vb & va)
    return read


def _image_reader(before: Any, after: Any, params: ChangeParams) -> WindowFn:
    spec_b, spec_a = band_spec_for(before, params.bands), band_spec_for(after, params.bands)
    if spec_b.count != spec_a.count:
        raise RasterError(f"{before.name} gives {spec_b.count} band(s) but {after.name} {spec_a.count}; pass `bands` "
                          "to pick the same bands of both dates")
    (norm_b, spec_b), (norm_a, spec_a) = (compute_normalization([(src, list(all_windows(src, params.block)))], spec)
                                          for src, spec in ((before, spec_b), (after, spec_a)))

    def read(window: Window) -> tuple[dict[str, np.ndarray], np.ndarray]:
        b, vb = read_padded(before, window, params.halo, list(spec_b.indexes))
        a, va = read_padded(after, window, params.halo, list(spec_a.indexes))
        labels = image_changes(norm_b.apply(spec_b.physical(b), vb), norm_a.apply(spec_a.physical(a), va), vb & va,
                               params.radius, params.threshold)
        return {"changed": labels}, (vb & va)
    return read


def scan_changes(before: DatasetReader, after: Any, kind: Literal["image", "classes"], params: ChangeParams,
                 mask_path: Path) -> tuple[dict[tuple[str, int], np.ndarray], dict[str, int]]:
    """One windowed pass: write the change mask (0/1, 255 = no data) and collect change polygons per
    (layer, value); returns them with pixel counts."""
    read = _class_reader(before, after, params) if kind == "classes" else _image_reader(before, after, params)
    polygonizers: dict[str, Polygonizer] = {}
    pieces: dict[str, list[tuple[shapely.Polygon, int]]] = {}
    counts = {"valid": 0, "changed": 0}
    m, h = params.min_pixels, params.halo
    with create_raster(mask_path, output_profile(before, 1, "uint8", IGNORE_VALUE)) as dst:
        for window in all_windows(before, params.block):
            layers, valid = read(window)
            layers = {k: _sieved(v, params.min_pixels)[m:-m, m:-m] for k, v in layers.items()}
            valid = valid[h:-h, h:-h]
            changed = np.logical_or.reduce([v > 0 for v in layers.values()]) & valid
            dst.write(np.where(valid, changed, IGNORE_VALUE).astype(np.uint8), 1, window=window)
            counts["valid"] += int(valid.sum())
            counts["changed"] += int(changed.sum())
            for name, labels in layers.items():
                polygonizer = polygonizers.setdefault(name, Polygonizer(before.width, before.height))
                pieces.setdefault(name, []).extend(polygonizer.add(window, labels))
        dst.write_colormap(1, {0: (0, 0, 0, 0), 1: (255, 79, 163, 255)})
        dst.update_tags(change_mode=kind, radius_px=str(params.radius), min_pixels=str(params.min_pixels))
    polygons = {}
    for name in sorted(pieces):
        for value, polys in by_value([*pieces[name], *polygonizers[name].finish()], before.transform).items():
            polygons[(name, value)] = polys
    return polygons, counts


def resolve_mode(mode: Mode, before: DatasetReader, after: DatasetReader) -> Literal["image", "classes"]:
    """"classes" for two class rasters, "image" for two images; a mix, or a forced mode that does not fit, raises."""
    classes = (is_class_raster(before), is_class_raster(after))
    if mode == "auto" and classes[0] != classes[1]:
        kinds = ["a class raster" if c else "an image" for c in classes]
        raise ConfigError(f"BEFORE {before.name} is {kinds[0]} but AFTER {after.name} is {kinds[1]}; pass two images "
                          "(with `model` to classify them) or two predictions")
    integer = [src.count == 1 and np.dtype(src.dtypes[0]).kind in "iu" for src in (before, after)]
    if mode == "classes" and not all(integer):
        raise ConfigError("`mode` classes needs two 1-band integer class rasters; use `mode` image for images")
    if mode == "auto":
        return "classes" if classes[0] else "image"
    return mode


def predict_both(model: str | Path, images: tuple[str | Path, str | Path], folder: Path, device: str,
                 predict_kwargs: dict[str, Any]) -> tuple[Path, Path]:
    """Class rasters of both dates from `model`, written into `folder` (imports the prediction stack lazily)."""
    try:
        from landsight.predict import predict_raster
    except ImportError as exc:
        raise MissingExtraError(f"change detection with `model` needs the prediction stack ({exc}); install it with "
                                "pip install 'landsight[ml]'") from exc
    folder.mkdir(parents=True, exist_ok=True)
    paths = (folder / "before.tif", folder / "after.tif")
    for image, path in zip(images, paths, strict=True):
        log.info("predicting %s with %s", image, model)
        predict_raster(model, image, path, device=device, **predict_kwargs)
    return paths


def change_features(polygons: dict[tuple[str, int], np.ndarray], kind: str, names: dict[int, str],
                    pixel_m: float, crs_pixel_area: float) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Geometries and properties (class, change, pixels, area_m2) of every change polygon."""
    geoms: list[shapely.Geometry] = []
    props: list[dict[str, Any]] = []
    for (layer, value), polys in polygons.items():
        change = layer if kind == "classes" else ("brighter" if value == 1 else "darker")
        name = names.get(value, str(value)) if kind == "classes" else "any"
        for poly in polys:
            pixels = float(shapely.area(poly)) / crs_pixel_area
            geoms.append(poly)
            props.append({"id": f"{change}-{len(props)}", "class": name, "change": change,
                          "pixels": round(pixels), "area_m2": round(pixels * pixel_m**2, 2)})
    return np.asarray(geoms, dtype=object), props


def summarize_changes(props: list[dict[str, Any]], counts: dict[str, int], pixel_m: float) -> dict[str, Any]:
    """Changed pixels and area, and count/area per change kind and class."""
    by_kind: dict[str, dict[str, dict[str, float]]] = {}
    for p in props:
        entry = by_kind.setdefault(p["change"], {}).setdefault(p["class"], {"count": 0, "area_m2": 0.0})
        entry["count"] += 1
        entry["area_m2"] = round(entry["area_m2"] + p["area_m2"], 2)
    fraction = counts["changed"] / counts["valid"] if counts["valid"] else None
    return {"pixels": {**counts, "changed_fraction": round(fraction, 6) if fraction is not None else None},
            "changed_area_m2": round(counts["changed"] * pixel_m**2, 2), "polygons": len(props), "changes": by_kind}


def detect_change(before: str | Path, after: str | Path, out_dir: str | Path, model: str | Path | None = None,
                  mode: Mode = "auto", params: ChangeParams | None = None, device: str = "auto",
                  predict_kwargs: dict[str, Any] | None = None, overwrite: bool = False,
                  crs: CrsRequest = None) -> dict[str, Any]:
    """Compare two dates of one area and write `out_dir` atomically: change.tif (1 = changed, 255 = no data),
    layers/changes.geojson (WGS 84, or the CRS `crs` asks for: "raster" keeps BEFORE's), summary.json, report.html
    and review.html. Returns the summary.

    Raises:
        ConfigError: inputs of different kinds, or a forced `mode` that does not fit them.
        MissingExtraError: `model` given but the prediction stack is not installed.
        OutputExistsError: `out_dir` exists and not `overwrite`.
    """
    params = params or ChangeParams()
    check_request(crs)
    inputs = {"before": describe_input(before), "after": describe_input(after)}
    with atomic_path(out_dir, overwrite, directory=True) as tmp:
        rasters: tuple[Path, Path] = (Path(before), Path(after))
        if model is not None:
            rasters = predict_both(model, rasters, tmp / "predictions", device, predict_kwargs or {})
            mode = "classes"
        with open_raster(rasters[0]) as b_src, open_raster(rasters[1]) as a_src:
            kind = resolve_mode(mode, b_src, a_src)
            resampling = Resampling.nearest if kind == "classes" else Resampling.bilinear
            with aligned(a_src, b_src, resampling) as a_view:
                polygons, counts = scan_changes(b_src, a_view, kind, params, tmp / "change.tif")
            table = class_table_of(b_src) or class_table_of(a_src)
            names = {c.value: c.name for c in table.classes} if table else {}
            pixel_m, crs_in = pixel_size_m(b_src), b_src.crs
            geoms, props = change_features(polygons, kind, names, pixel_m, abs(b_src.transform.a * b_src.transform.e))
        parameters = {"mode": kind, **dataclasses.asdict(params), "device": device if model else None}
        summary = {"provenance": provenance(inputs, parameters, str(model) if model else None),
                   **summarize_changes(props, counts, pixel_m)}
        _write_change_report(tmp, summary, Features(geoms, props, crs_in), (Path(before), Path(after)), rasters,
                             kind, keep_request(crs, crs_in))
    return summary


def _colormap(path: Path) -> dict[int, tuple[int, int, int, int]]:
    """Colours of a class raster: its class table, its colour map, or a default palette."""
    with open_raster(path) as src:
        table = class_table_of(src)
        if table is not None:
            return table.colormap()
        with contextlib.suppress(ValueError):
            return dict(src.colormap(1))
    return ClassTable.from_names([str(v) for v in range(1, IGNORE_VALUE)], background=True).colormap()


def _overlays(folder: Path, originals: tuple[Path, Path], rasters: tuple[Path, Path],
              kind: str) -> list[ImageLayer]:
    """PNG overlays: the two images (when inputs are images) and the two class rasters (class mode)."""
    (folder / "overlays").mkdir()
    layers = []
    for name, original, raster in zip(("before", "after"), originals, rasters, strict=True):
        if original == raster and kind == "classes":
            bounds = render_palette(raster, folder / "overlays" / f"{name}.png", _colormap(raster))
            layers.append(ImageLayer(f"{name} (classes)", f"overlays/{name}.png", bounds, visible=name == "after"))
            continue
        bounds = render_image(original, folder / "overlays" / f"{name}.png")
        layers.append(ImageLayer(f"{name} image", f"overlays/{name}.png", bounds, visible=name == "after"))
        if kind == "classes":
            href = f"overlays/{name}-classes.png"
            bounds = render_palette(raster, folder / href, _colormap(raster))
            layers.append(ImageLayer(f"{name} classes", href, bounds, 0.6, visible=False))
    return layers


def change_html(summary: dict[str, Any]) -> str:
    """report.html of a change detection."""
    px = summary["pixels"]
    rows = [(kind, name, e["count"], e["area_m2"]) for kind, per in summary["changes"].items()
            for name, e in per.items()]
    links = {"review map": "review.html", "change.tif": "change.tif", "changes.geojson": "layers/changes.geojson",
             "summary.json": "summary.json"}
    sections = [
        Section("Changed pixels", table=table(["valid px", "changed px", "changed fraction", "changed area m²"],
                                              [(px["valid"], px["changed"], px["changed_fraction"],
                                                summary["changed_area_m2"])])),
        Section("Changes", table=table(["change", "class", "polygons", "area m²"], rows)),
    ]
    mode = summary["provenance"]["parameters"]["mode"]
    intro = ("Class changes between the dates (appeared / disappeared per class)" if mode == "classes" else
             "Spectral changes between the dates (brighter / darker after)") + ", tolerant of small misregistration."
    return report_page(f"landsight change ({mode})", intro, sections, links, summary["provenance"])


def _write_change_report(folder: Path, summary: dict[str, Any], layer: Features, originals: tuple[Path, Path],
                         rasters: tuple[Path, Path], kind: str, crs: CrsRequest) -> None:
    """Layers (in the CRS `crs` asks for), overlays, summary.json, report.html and review.html inside `folder`."""
    collections = write_layers(folder / "layers", {"changes": layer}, crs)
    images = _overlays(folder, originals, rasters, kind)
    summary["files"] = {"mask": "change.tif", "summary": "summary.json", "report": "report.html",
                        "review": "review.html", "layers": {"changes": "layers/changes.geojson"},
                        "overlays": [i.href for i in images]}
    if kind == "classes" and originals != rasters:
        summary["files"]["predictions"] = ["predictions/before.tif", "predictions/after.tif"]
    write_json(folder / "summary.json", summary)
    (folder / "report.html").write_text(change_html(summary), encoding="utf-8")
    features = collections["changes"]["features"]
    vectors = [VectorLayer(change, {"type": "FeatureCollection",
                                    "features": [f for f in features if f["properties"]["change"] == change]},
                           COLORS[change], 0.25) for change in sorted({f["properties"]["change"] for f in features})]
    largest = sorted(features, key=lambda f: -f["properties"]["area_m2"])[:200]
    items = ReviewItems("Largest changes", {"type": "FeatureCollection", "features": largest},
                        ("change", "class", "area_m2"), max_zoom=19)
    write_review_page(folder, "landsight review: change", images, vectors, items, summary["provenance"])
