"""Engine-independent pipeline stages: plan, read, gate, infer, write outputs, dead letters, completion markers.

Beam (`transforms.py`) and Flink (`flink.py`) call these and nothing else, so every engine writes the same files.
This module imports neither apache_beam nor pyflink. Per raster KEY (the input's file stem, made safe: see
`raster_key`) an output folder holds:

    KEY.tif          class mask, Cloud Optimized GeoTIFF, tagged like `landsight predict` output
    KEY.geojsonl     polygons as a GeoJSON text sequence (one Feature per line, WGS 84 as RFC 8142 says), or
    KEY.gpkg         the polygons as a GeoPackage when another CRS is asked for ("raster": the mask's)
    KEY.stats.csv    one row per window: clear/cloudy and class areas (m²) over the window's core
    KEY.done.json    completion marker (`landsight.pipeline.markers`), written last: a rerun skips the raster while
                     the marker matches the job, the landsight version and the window grid and blend version
    dead-letter/KEY.STAGE.json   why an input failed (removed when a later run completes it)
    .spill/KEY/      each segmented window's probabilities (.npy) until the mask is stitched, then removed: the
                     engine's state holds file names, never a raster's worth of probabilities

OUT is a local folder or an object-store URL (`s3://bucket/out`): every file goes through
`landsight.pipeline.storage`, which writes it under a temporary name or key and renames or copies it onto its final
name, so a killed run leaves no corrupt output, only hidden `.*.part*` files and spill folders that `clean_partials`
removes.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from landsight.errors import ConfigError, MissingExtraError, RasterError
from landsight.geo import WGS84, parse_crs
from landsight.imagery.bands import BandSpec, check_bands_match
from landsight.imagery.io import open_raster, read_window
from landsight.labels.vector_out import KEEP_CRS, check_request, write_features
from landsight.models.backends import model_metadata
from landsight.models.model_file import ModelFile
from landsight.paths import safe_name
from landsight.pipeline import storage
from landsight.pipeline.markers import CompletionMarker, JobFacts, read_marker, write_marker
from landsight.predict.predictor import Predictor
from landsight.predict.raster import (
    DEFAULT_OVERLAP,
    DEFAULT_WINDOW,
    Chunk,
    RasterPlan,
    WindowResult,
    infer_chunk,
    plan_raster,
    provenance_tags,
    read_chunk,
    write_prediction,
)
from landsight.predict.stats import stats_rows, window_stats, write_stats_csv
from landsight.provenance import file_digest, utc_now
from landsight.vectorize import mask_features

log = logging.getLogger(__name__)


class Gate(Protocol):
    """The cloud gate contract (`landsight.classify.gate.CloudGate`): raw (C, H, W) images of `bands` -> cloudy?"""

    bands: BandSpec

    def cloudy(self, images: list[np.ndarray]) -> list[bool]:
        """One flag per image."""
        ...


@dataclasses.dataclass(frozen=True)
class JobConfig:
    """Everything a pipeline worker needs, as plain values (it is shipped to workers and to the Flink job)."""

    model: str
    out_dir: str
    cloud_model: str | None = None
    window: int = DEFAULT_WINDOW
    overlap: int = DEFAULT_OVERLAP
    batch_size: int = 1
    bands: tuple[int, ...] | None = None
    device: str = "cpu"
    simplify: float = 0.0
    min_area: float = 0.0
    polygon_crs: str | None = None
    """None or WGS 84: KEY.geojsonl; "raster" (the mask's CRS) or any other CRS: KEY.gpkg."""
    polygons: bool = True

    def __post_init__(self) -> None:
        check_request(self.polygon_crs)

    @property
    def polygon_suffix(self) -> str:
        """The polygons' file suffix: a GeoJSON text sequence (WGS 84 by definition) or a GeoPackage (any CRS)."""
        if self.polygon_crs is None:
            return "geojsonl"
        if self.polygon_crs.lower() != KEEP_CRS and parse_crs(self.polygon_crs) == WGS84:
            return "geojsonl"
        return "gpkg"

    def to_json(self) -> str:
        """JSON text (for job files)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> JobConfig:
        """Inverse of `to_json`."""
        data = json.loads(text)
        data["bands"] = tuple(data["bands"]) if data.get("bands") else None
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class RasterOutputs:
    """Output paths (or object URLs) of one raster."""

    mask: str
    polygons: str
    stats: str
    marker: str


@dataclasses.dataclass(frozen=True)
class ChunkTask:
    """One chunk of one raster to segment; `key` names the raster's outputs."""

    key: str
    plan: RasterPlan
    chunk: Chunk

    @property
    def image(self) -> str:
        """The input raster."""
        return self.plan.image


@dataclasses.dataclass(frozen=True)
class ChunkData:
    """A read chunk: the normalized batch of its (clear) windows and, with a gate, raw images of the gate's bands."""

    task: ChunkTask
    windows: tuple[Any, ...]
    batch: np.ndarray
    gate_images: tuple[np.ndarray, ...] | None = None


@dataclasses.dataclass(frozen=True)
class StoredWindow:
    """A segmented window whose probabilities wait in a spill file (`path` None: the gate found it cloudy)."""

    row: int
    window: Any
    path: str | None

    def load(self) -> WindowResult:
        """The window's result with its probabilities read back."""
        return WindowResult(self.row, self.window, None if self.path is None else storage.load_array(self.path))


@dataclasses.dataclass(frozen=True)
class ChunkResult:
    """Window results of one chunk."""

    task: ChunkTask
    results: tuple[StoredWindow, ...]


@dataclasses.dataclass(frozen=True)
class RasterDone:
    """A raster whose mask is written; `cloudy` lists (col_off, row_off) of windows the gate dropped."""

    key: str
    plan: RasterPlan
    cloudy: tuple[tuple[int, int], ...]


def raster_key(image: str) -> str:
    """Output name of an input: its file stem made safe (see `landsight.paths.safe_name`): `/vsicurl/.../scene 1.tif`
    -> `scene_1`, `...tif` (stem `..`) -> `__`."""
    name = image.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return safe_name(stem, fallback="raster")


def check_unique_keys(images: Sequence[str]) -> None:
    """Refuse inputs whose outputs would collide: the same key, compared ignoring case (as some file systems do)."""
    seen: dict[str, str] = {}
    for image in images:
        other = seen.setdefault(raster_key(image).casefold(), image)
        if other != image:
            raise ConfigError(f"inputs {other} and {image} would both write {raster_key(image)}.* in the output "
                              "folder; rename one, or run them into separate output folders (`out_dir`)")


def outputs_for(out_dir: str | Path, key: str, polygon_suffix: str = "geojsonl") -> RasterOutputs:
    """Where raster `key`'s outputs go (always directly inside `out_dir`)."""
    suffixes = ("tif", polygon_suffix, "stats.csv", "done.json")
    return RasterOutputs(*(storage.child(out_dir, f"{key}.{suffix}") for suffix in suffixes))


def job_outputs(config: JobConfig, key: str) -> RasterOutputs:
    """`outputs_for` the job's output folder and polygon format."""
    return outputs_for(config.out_dir, key, config.polygon_suffix)


def job_facts(config: JobConfig, model_sha: str, gate_sha: str | None) -> JobFacts:
    """What the outputs of `config` depend on, as its completion markers record it."""
    return JobFacts(model_sha, gate_sha, config.window, config.overlap, config.batch_size, config.bands,
                    config.polygons, config.simplify, config.min_area, config.polygon_crs)


def is_complete(config: JobConfig, image: str, model_sha: str, gate_sha: str | None = None) -> bool:
    """True if `image`'s outputs exist and its marker matches this job, landsight version and window grid and blend
    version (`CompletionMarker.stale_reason`); otherwise the raster is computed again."""
    outputs = job_outputs(config, raster_key(image))
    marker = read_marker(outputs.marker)
    if marker is None:
        return False
    reason = marker.stale_reason(image, job_facts(config, model_sha, gate_sha))
    if reason is not None:
        log.info("%s: outputs of another job (%s); computing them again", image, reason)
        return False
    required = [outputs.mask, outputs.stats] + ([outputs.polygons] if config.polygons else [])
    return all(storage.exists(p) for p in required)


def spill_dir(out_dir: str | Path, key: str) -> str:
    """Where raster `key`'s window probabilities wait for stitching (always inside OUT/.spill: it gets removed)."""
    return storage.child(storage.child(out_dir, ".spill"), key)


def dead_letters(out_dir: str | Path, key: str) -> list[str]:
    """Raster `key`'s dead-letter records, KEY.STAGE.json (not those of a key that merely starts with `key.`)."""
    found = storage.listing(storage.child(out_dir, "dead-letter"), f"{key}.*.json")
    return [p for p in found if "." not in storage.name_of(p)[len(key) + 1:-len(".json")]]


def clean_partials(out_dir: str | Path) -> int:
    """Remove temporary files and spill folders a killed run left in `out_dir`; returns how many."""
    removed = storage.remove_temporaries(out_dir) + storage.remove_temporaries(storage.child(out_dir, "dead-letter"))
    return removed + storage.remove_tree(storage.child(out_dir, ".spill"))


_PREDICTORS: dict[tuple[str, str], Predictor] = {}
_MODEL_FILES: dict[str, ModelFile] = {}


def load_model(config: JobConfig) -> ModelFile:
    """The segmentation model's metadata (bands, normalization, classes; of a MODEL file or an ONNX export), read once
    per process."""
    if config.model not in _MODEL_FILES:
        _MODEL_FILES[config.model] = model_metadata(config.model, task="segmentation")
    return _MODEL_FILES[config.model]


def load_predictor(config: JobConfig) -> Predictor:
    """The segmentation model, loaded once per process."""
    key = (config.model, config.device)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = Predictor.load(config.model, config.device)
    return _PREDICTORS[key]


def load_gate(config: JobConfig) -> Gate | None:
    """The cloud gate of `config.cloud_model` (None without one); `landsight.classify` is imported only here."""
    if config.cloud_model is None:
        return None
    try:
        from landsight.classify.gate import CloudGate
    except ImportError as exc:
        raise MissingExtraError("`cloud_model` needs landsight.classify.gate (the cloud classifier); this landsight "
                                "has none: update landsight or run without `cloud_model`") from exc
    gate: Gate = CloudGate.load(config.cloud_model, device=config.device)
    return gate


def gate_sha(config: JobConfig, gate: Gate | None) -> str | None:
    """Identity of the gate for completion markers: the gate file's sha256, or the injected object's type."""
    if config.cloud_model is not None:
        return file_digest(config.cloud_model)
    return None if gate is None else f"{type(gate).__module__}.{type(gate).__qualname__}"


def plan_tasks(config: JobConfig, image: str, model_file: ModelFile) -> list[ChunkTask]:
    """The chunks of `image` to segment (checks the file is readable and its bands fit the model)."""
    plan = plan_raster(image, model_file, config.window, config.overlap, config.batch_size, config.bands, check=True)
    key = raster_key(image)
    return [ChunkTask(key, plan, chunk) for chunk in plan.chunks]


def read_task(task: ChunkTask, model_file: ModelFile, gate_bands: BandSpec | None = None) -> ChunkData:
    """Read a chunk's normalized batch and, with a gate's `gate_bands`, the pixels of those bands in the gate's
    units (scale and offset from the image file, see `check_bands_match`)."""
    with open_raster(task.image) as src:
        batch = read_chunk(src, task.plan, task.chunk, model_file.normalization)
        images = None
        if gate_bands is not None:
            spec = check_bands_match(gate_bands, src)
            images = tuple(spec.physical(read_window(src, w, list(spec.indexes))) for w in task.chunk.windows)
    return ChunkData(task, task.chunk.windows, batch, images)


def apply_gate(data: ChunkData, gate: Gate) -> tuple[ChunkData | None, ChunkResult | None]:
    """Split a chunk into its clear part (to segment; None if all cloudy) and its cloudy windows (None if none)."""
    assert data.gate_images is not None, "read_task was called without the gate"
    flags = [bool(f) for f in gate.cloudy(list(data.gate_images))]
    if len(flags) != len(data.windows):
        raise RasterError(f"the cloud gate returned {len(flags)} flags for {len(data.windows)} windows")
    row = data.task.chunk.row
    cloudy = tuple(StoredWindow(row, w, None) for w, f in zip(data.windows, flags, strict=True) if f)
    keep = [i for i, f in enumerate(flags) if not f]
    clear = None
    if keep:
        clear = ChunkData(data.task, tuple(data.windows[i] for i in keep), data.batch[keep], None)
    return clear, (ChunkResult(data.task, cloudy) if cloudy else None)


def infer(data: ChunkData, predictor: Predictor, out_dir: str | Path) -> ChunkResult:
    """Segment a read chunk (one forward pass); its probabilities go to spill files in `out_dir`."""
    probs = infer_chunk(predictor, data.batch, data.windows)
    folder = spill_dir(out_dir, data.task.key)
    stored = []
    for window, p in zip(data.windows, probs, strict=True):
        path = storage.child(folder, f"{int(window.row_off)}_{int(window.col_off)}.npy")
        storage.save_array(path, p)
        stored.append(StoredWindow(data.task.chunk.row, window, path))
    return ChunkResult(data.task, tuple(stored))


def write_mask(config: JobConfig, model_file: ModelFile, plan: RasterPlan,
               results: Iterable[StoredWindow]) -> RasterDone:
    """Blend all window results of a raster into its mask COG, reading spilled probabilities one window at a time;
    every window of the plan must be present once."""
    ordered = sorted(results, key=lambda r: (int(r.window.row_off), int(r.window.col_off)))
    if len(ordered) != plan.n_windows:
        raise RasterError(f"{plan.image}: {len(ordered)} of {plan.n_windows} windows arrived; see the other "
                          "dead-letter records of this raster")
    key = raster_key(plan.image)
    tags = provenance_tags(model_file, plan.spec, plan.window, plan.overlap, plan.image)
    with open_raster(plan.image) as src, storage.write_via(job_outputs(config, key).mask) as mask:
        write_prediction(src, plan, mask, model_file.classes, tags, (r.load() for r in ordered), overwrite=True)
    storage.remove_tree(spill_dir(config.out_dir, key))
    cloudy = tuple((int(r.window.col_off), int(r.window.row_off)) for r in ordered if r.path is None)
    return RasterDone(key, plan, cloudy)


def write_polygons(config: JobConfig, done: RasterDone) -> RasterDone:
    """Polygonize a written mask into KEY.geojsonl or KEY.gpkg (nothing when `config.polygons` is off)."""
    if not config.polygons:
        return done
    outputs = job_outputs(config, done.key)
    with storage.local_copy(outputs.mask) as mask:
        features = mask_features(mask, config.simplify, config.min_area)
    with storage.write_via(outputs.polygons) as polygons:
        write_features(polygons, features, config.polygon_crs, overwrite=True)
    return done


def write_stats(config: JobConfig, model_file: ModelFile, done: RasterDone, gate_digest: str | None) -> RasterOutputs:
    """Write the per-window stats table, then the completion marker, and drop stale dead-letter records."""
    outputs = job_outputs(config, done.key)
    with storage.local_copy(outputs.mask) as mask:
        stats = window_stats(mask, done.plan.rows, model_file.classes, set(done.cloudy))
    with storage.write_via(outputs.stats) as table:
        write_stats_csv(stats_rows(done.plan.image, stats), table, overwrite=True)
    files = {k: v for k, v in dataclasses.asdict(outputs).items() if k != "marker"}
    job = job_facts(config, model_file.sha256, gate_digest)
    marker = CompletionMarker.now(done.plan.image, job, done.plan.n_windows, len(done.cloudy), files)
    write_marker(outputs.marker, marker)
    for stale in dead_letters(config.out_dir, done.key):
        storage.remove(stale)
    return outputs


def dead_letter(out_dir: str | Path, image: str, stage: str, error: BaseException | str,
                trace: Sequence[str] | None = None) -> str:
    """Record why `image` failed at `stage` in dead-letter/KEY.STAGE.json; returns the record's path."""
    key = raster_key(image)
    path = storage.child(storage.child(out_dir, "dead-letter"), f"{key}.{stage}.json")
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    if trace is None and isinstance(error, BaseException):
        trace = traceback.format_exception(error)
    record = {"image": image, "key": key, "stage": stage, "error": text, "traceback": "".join(trace or []),
              "time_utc": utc_now()}
    storage.write_text(path, json.dumps(record, indent=1))
    return path


def summarize(out_dir: str | Path, images: Sequence[str]) -> dict[str, Any]:
    """What happened to each of `images`: done (marker present) or failed (dead-letter records), else missing."""
    done, failed, missing = [], [], []
    for image in images:
        key = raster_key(image)
        records = dead_letters(out_dir, key)
        if storage.exists(outputs_for(out_dir, key).marker) and not records:
            done.append(image)
        elif records:
            failed.append({"image": image, **{k: v for k, v in json.loads(storage.read_text(records[0])).items()
                                               if k in ("stage", "error")}})
        else:
            missing.append(image)
    return {"out_dir": str(out_dir), "done": done, "failed": failed, "missing": missing}
