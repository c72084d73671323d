"""`predict_raster`: a MODEL over a whole raster with overlapping windows, bounded memory, provenance tags.

The work is split into stage functions that `landsight predict` and the pipelines (Beam, Flink) share, so every
engine produces the same pixels: `plan_raster` (band check, window grid, fixed inference chunks), `read_chunk`,
`infer_chunk` and `write_prediction` (blend, stitch, COG with provenance tags).

Determinism: a chunk is at most `batch_size` windows of one window row, always grouped the same way for a given
raster, window, overlap and batch size. Every engine runs each chunk as one forward pass, so results do not depend on
how an engine groups work, even with kernels whose floating-point results vary with the batch composition, as long
as the engines run the same backend: `predict_raster` alone may move a large CPU run to ONNX Runtime (`backend`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from rasterio.io import DatasetReader, DatasetWriter
from rasterio.windows import Window
from rich.progress import Progress

from landsight import __version__
from landsight.errors import ConfigError
from landsight.imagery.bands import BandSpec, BandUnits, Normalization, check_bands_match, read_bands
from landsight.imagery.io import (
    GDAL_CACHE_MB,
    check_readable,
    create_raster,
    open_raster,
    output_profile,
    read_valid_mask,
    to_cog,
)
from landsight.imagery.windows import aligned_window_rows
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.models.backends import TorchBackend
from landsight.models.model_file import ModelFile
from landsight.outputs import atomic_path, check_output
from landsight.predict.blend import StripBlender
from landsight.predict.predictor import Predictor, choose_backend
from landsight.progress import Eta, describe_size, warn_if_large

log = logging.getLogger(__name__)

DEFAULT_WINDOW = 1024
"""Inference window in px: larger windows cost less per pixel; memory grows with window x raster width."""
DEFAULT_OVERLAP = 128
"""Overlap of neighbouring windows in px; blended so that each pixel comes from >= 64 px inside a window."""


PROBABILITY_SCALE = 250
"""Probabilities are stored as uint8 round(p * 250); 255 is nodata."""


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One inference unit: up to `batch_size` windows of window row `row`, run as a single forward pass."""

    index: int
    row: int
    windows: tuple[Window, ...]


@dataclasses.dataclass(frozen=True)
class RasterPlan:
    """How one raster is predicted: bands to read, window grid (pixels) and inference chunks. Plain, picklable."""

    image: str
    width: int
    height: int
    spec: BandSpec
    window: int
    overlap: int
    chunks: tuple[Chunk, ...]

    @property
    def n_windows(self) -> int:
        """Number of windows over the raster."""
        return sum(len(c.windows) for c in self.chunks)

    @property
    def rows(self) -> list[list[Window]]:
        """Windows grouped by window row, top to bottom."""
        rows: dict[int, list[Window]] = {}
        for chunk in self.chunks:
            rows.setdefault(chunk.row, []).extend(chunk.windows)
        return [rows[r] for r in sorted(rows)]


@dataclasses.dataclass(frozen=True)
class WindowResult:
    """Blending input for one window: (classes, h, w) probabilities, or None where the window was not segmented
    (e.g. cloudy); such windows come out as nodata."""

    row: int
    window: Window
    probabilities: np.ndarray | None


def _multiple_of_32(n: int) -> int:
    return -(-n // 32) * 32


def check_window(window: int, overlap: int) -> None:
    """Refuse a window that is not a positive multiple of 32 px or an overlap of half a window or more."""
    if window % 32 or window < 32:
        raise ConfigError(f"`window` {window} must be a positive multiple of 32 px")
    if not 0 <= overlap <= window // 2:
        raise ConfigError(f"`overlap` {overlap} must be >= 0 and at most half the window ({window} px)")


def plan_chunks(rows: Sequence[Sequence[Window]], batch_size: int) -> tuple[Chunk, ...]:
    """Chunks of at most `batch_size` windows that never span two window rows, in row-major order."""
    if batch_size < 1:
        raise ConfigError(f"`batch_size` {batch_size} must be at least 1")
    chunks: list[Chunk] = []
    for r, row in enumerate(rows):
        for start in range(0, len(row), batch_size):
            chunks.append(Chunk(len(chunks), r, tuple(row[start:start + batch_size])))
    return tuple(chunks)


def plan_raster(image: str | Path, model_file: ModelFile, window: int = DEFAULT_WINDOW,
                overlap: int = DEFAULT_OVERLAP, batch_size: int = 1,
                bands: Sequence[int] | None = None, check: bool = False, given: BandUnits | None = None) -> RasterPlan:
    """Open `image`, match its bands (and their units: scale and offset from `given`, else the file) to the model's
    and lay out windows and chunks.

    `check` also reads a few pixels across the file first, to catch truncated or corrupt files before any work.
    """
    check_window(window, overlap)
    if check:
        check_readable(image)
    with open_raster(image) as src:
        spec = check_bands_match(model_file.bands, src, bands, given)
        rows = aligned_window_rows(src.width, src.height, window, overlap)
        return RasterPlan(str(image), src.width, src.height, spec, window, overlap, plan_chunks(rows, batch_size))


def batch_shape(width: int, height: int, window: int) -> tuple[int, int]:
    """(H, W) every window of a raster is padded to: the window size, or less for a raster smaller than it."""
    return min(window, _multiple_of_32(height)), min(window, _multiple_of_32(width))


def read_batch(src: DatasetReader, windows: Sequence[Window], spec: BandSpec, normalization: Normalization,
               shape: tuple[int, int]) -> np.ndarray:
    """Normalized (N, C, H, W) float32 for `windows` (in physical units first: `read_bands`), each padded by
    reflection at the raster edge to `shape`.

    Nodata pixels (see `read_masked`) and NaN/Inf values become 0 (the band mean after normalization).
    """
    batch = np.zeros((len(windows), spec.count, *shape), dtype=np.float32)
    for i, window in enumerate(windows):
        data, valid = read_bands(src, window, spec)
        data = normalization.apply(data, np.asarray(valid.any(axis=0)))
        h, w = data.shape[1:]
        pad = ((0, 0), (0, shape[0] - h), (0, shape[1] - w))
        batch[i] = np.pad(data, pad, mode="reflect" if min(h, w) > 1 else "edge")
    return batch


def read_chunk(src: DatasetReader, plan: RasterPlan, chunk: Chunk, normalization: Normalization) -> np.ndarray:
    """The normalized batch of one chunk (see `read_batch`), padded to the raster's `batch_shape`."""
    return read_batch(src, chunk.windows, plan.spec, normalization, batch_shape(plan.width, plan.height, plan.window))


def infer_chunk(predictor: Predictor, batch: np.ndarray, windows: Sequence[Window]) -> list[np.ndarray]:
    """One forward pass over a chunk's batch; per-window (classes, h, w) probabilities with the padding cut off."""
    probs = predictor.probabilities(batch)
    return [np.ascontiguousarray(p[:, :int(w.height), :int(w.width)]) for w, p in zip(windows, probs, strict=True)]


def provenance_tags(predictor: Predictor | ModelFile, spec: BandSpec, window: int, overlap: int,
                    image: str) -> dict[str, str]:
    """GeoTIFF tags saying which model, bands, normalization and window scheme produced an output."""
    mf = predictor.model_file if isinstance(predictor, Predictor) else predictor
    return {
        "landsight_version": __version__, "model_sha256": mf.sha256, "model_arch": f"{mf.arch}/{mf.encoder}",
        "bands": json.dumps({"model": mf.bands.to_dict(), "image": spec.to_dict()}),
        "normalization": json.dumps(mf.normalization.to_dict()), "classes": json.dumps(mf.classes.to_list()),
        "tile_scheme": json.dumps({"window": window, "overlap": overlap, "blend": "quadratic-ramp"}),
        "source_image": str(image),
    }


def _write_strip(dst: DatasetWriter, src: DatasetReader, spec: BandSpec, strip: Window, probs: np.ndarray,
                 values: np.ndarray, probabilities: bool, skipped: Sequence[Window] = ()) -> None:
    """Write blended probabilities (or their classes) for `strip`; nodata where the image is, or in `skipped`."""
    valid = read_valid_mask(src, strip, list(spec.indexes))
    top, bottom = int(strip.row_off), int(strip.row_off + strip.height)
    left, right = int(strip.col_off), int(strip.col_off + strip.width)
    for w in skipped:
        r0, r1 = max(int(w.row_off), top), min(int(w.row_off + w.height), bottom)
        c0, c1 = max(int(w.col_off), left), min(int(w.col_off + w.width), right)
        if r0 < r1 and c0 < c1:
            valid[r0 - top:r1 - top, c0 - left:c1 - left] = False
    if probabilities:
        out = np.round(probs * PROBABILITY_SCALE).astype(np.uint8)
        out[:, ~valid] = IGNORE_VALUE
        dst.write(out, window=strip)
    else:
        classes = values[probs.argmax(axis=0)]
        classes[~valid] = IGNORE_VALUE
        dst.write(classes, 1, window=strip)


def write_prediction(src: DatasetReader, plan: RasterPlan, output: str | Path, classes: ClassTable,
                     tags: dict[str, str], results: Iterable[WindowResult], probabilities: bool = False,
                     overwrite: bool = False, cog: bool = True) -> None:
    """Blend `results` (row-major, every window of `plan` once) into `output`, atomically, as a tagged (COG) GeoTIFF.

    Memory holds one row of windows over the raster width. Windows whose result is None come out as nodata.
    """
    profile = output_profile(src, len(classes) if probabilities else 1, "uint8", IGNORE_VALUE)
    # GDAL's block cache defaults to 5 % of RAM and fills up while a large output and its COG copy are written.
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB), atomic_path(output, overwrite) as final_tmp:
        work = final_tmp.with_name(final_tmp.name + ".strips.tif") if cog else final_tmp
        try:
            with create_raster(work, profile) as dst:
                _describe(dst, classes, probabilities, tags)
                _stitch(src, dst, plan, classes, results, probabilities)
            if cog:
                to_cog(work, final_tmp)
        finally:
            if cog:
                work.unlink(missing_ok=True)


def _stitch(src: DatasetReader, dst: DatasetWriter, plan: RasterPlan, classes: ClassTable,
            results: Iterable[WindowResult], probabilities: bool) -> None:
    """Feed window results to a StripBlender row by row, writing each strip as soon as no later row touches it."""
    values = classes.value_lut()
    blender = StripBlender(plan.width, plan.height, plan.window, len(classes), plan.overlap)
    tops = [int(row[0].row_off) for row in plan.rows]
    skipped: list[Window] = []
    current = 0

    def flush(row: int) -> None:
        next_top = tops[row + 1] if row + 1 < len(tops) else plan.height
        for strip, blended in blender.flush(next_top):
            _write_strip(dst, src, plan.spec, strip, blended, values, probabilities, skipped)

    for result in results:
        while result.row > current:
            flush(current)
            current += 1
        if result.probabilities is None:
            skipped.append(result.window)
        else:
            blender.add(result.window, result.probabilities)
    for row in range(current, len(tops)):
        flush(row)


def predict_raster(model: str | Path | Predictor, image: str | Path, output: str | Path, overlap: int = DEFAULT_OVERLAP,
                   batch_size: int = 1, device: str = "auto", probabilities: bool = False,
                   bands: Sequence[int] | None = None, overwrite: bool = False, window: int = DEFAULT_WINDOW,
                   cog: bool = True, source: str | None = None, given: BandUnits | None = None,
                   precision: str = "auto", backend: str = "auto") -> dict[str, Any]:
    """Predict `image` with `model` into a tiled, compressed (COG) GeoTIFF; returns a summary. `given` scales and
    offsets override the image file's (see `check_bands_match`). `precision` (see
    `landsight.models.backends.PRECISIONS`) and `backend` (see `landsight.predict.predictor.BACKENDS`) choose how the
    network runs; by default bf16 only where the hardware computes it natively, and ONNX Runtime for large CPU runs.

    The output's `source_image` tag names `source` (e.g. the STAC item a VRT `image` was made from), else `image`.

    The network is fully convolutional, so it runs on `window` px windows (larger than its training chips, which
    costs less per pixel); neighbours overlap by `overlap` px and are blended, so no seams appear at window edges.
    Memory holds one row of windows over the raster width, never the whole raster.
    """
    check_output(output, overwrite)
    predictor = model if isinstance(model, Predictor) else Predictor.load(model, device, precision)
    plan = plan_raster(image, predictor.model_file, window, overlap, batch_size, bands, given=given)
    log_plan(plan, batch_size)
    predictor = choose_backend(predictor, backend, plan.n_windows * int(np.prod(batch_shape(plan.width, plan.height,
                                                                                            plan.window))))
    tags = {**provenance_tags(predictor, plan.spec, window, overlap, source or str(image)),
            "inference": inference_tag(predictor)}
    with open_raster(image) as src:
        results = _predict_chunks(predictor, src, plan)
        write_prediction(src, plan, output, predictor.model_file.classes, tags, results, probabilities, overwrite,
                         cog)
    log.info("predicted %d windows of %d px over %s", plan.n_windows, window, image)
    return {"windows": plan.n_windows, "window": window, "overlap": overlap, "output": str(output), **tags}


def inference_tag(predictor: Predictor) -> str:
    """JSON naming how the network ran: {"backend": "torch" | "onnx", "precision": "fp32" | "bf16"}."""
    backend = predictor.backend
    precision = backend.precision if isinstance(backend, TorchBackend) else "fp32"
    return json.dumps({"backend": backend.name, "precision": precision})


def log_plan(plan: RasterPlan, batch_size: int) -> None:
    """Say at INFO what predicting `plan` involves (size, pixels, windows, forward passes); warn when it is large."""
    log.info("predict %s: %s, %s windows of %d px (overlap %d px) in %s forward pass(es) of up to %d window(s)",
             plan.image, describe_size(plan.width, plan.height), f"{plan.n_windows:,}", plan.window, plan.overlap,
             f"{len(plan.chunks):,}", batch_size)
    warn_if_large("predict", plan.n_windows)


def _describe(dst: DatasetWriter, classes: ClassTable, probabilities: bool, tags: dict[str, str]) -> None:
    dst.update_tags(**tags)
    if probabilities:
        for i, name in enumerate(classes.names, start=1):
            dst.set_band_description(i, f"p({name})")
        dst.scales = [1 / PROBABILITY_SCALE] * len(classes)
    else:
        dst.set_band_description(1, "class")
        dst.write_colormap(1, classes.colormap())


def _predict_chunks(predictor: Predictor, src: DatasetReader, plan: RasterPlan) -> Iterator[WindowResult]:
    """Read the next chunk in a thread while the model runs on the current one; yield window results in order."""
    normalization = predictor.model_file.normalization
    chunks = plan.chunks
    # The reader thread gets its own dataset handle: GDAL handles must not be shared between threads.
    with open_raster(src.name) as own, ThreadPoolExecutor(max_workers=1) as reader, \
            Progress(transient=True) as progress:
        task = progress.add_task("predicting", total=plan.n_windows)
        eta = Eta("predict", plan.n_windows)
        pending = reader.submit(read_chunk, own, plan, chunks[0], normalization)
        for i, chunk in enumerate(chunks):
            batch = pending.result()
            if i + 1 < len(chunks):
                pending = reader.submit(read_chunk, own, plan, chunks[i + 1], normalization)
            for win, p in zip(chunk.windows, infer_chunk(predictor, batch, chunk.windows), strict=True):
                yield WindowResult(chunk.row, win, p)
            progress.advance(task, len(chunk.windows))
            eta.advance(len(chunk.windows))
