"""Beam PTransforms around the stage functions: ReadWindows | CloudGate | RunInference | Stitch+WriteCOG |
Vectorize | Stats, each with a dead-letter output, plus a watched-folder source for streaming.

Every DoFn is a few lines calling `landsight.pipeline.stages`; the ParDos use Beam's `with_exception_handling`,
so a bad input ends as a dead-letter record (`dead-letter/KEY.STAGE.json`) while the others go on.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.coders import PickleCoder
from apache_beam.metrics.metric import Metrics
from apache_beam.ml.inference.base import RunInference
from apache_beam.pvalue import PCollection
from apache_beam.transforms.periodicsequence import PeriodicImpulse
from apache_beam.transforms.userstate import BagStateSpec, ReadModifyWriteStateSpec
from apache_beam.transforms.window import FixedWindows
from apache_beam.utils.timestamp import MAX_TIMESTAMP, Timestamp

from landsight.imagery.bands import BandSpec
from landsight.pipeline import stages
from landsight.pipeline.handler import LandsightModelHandler
from landsight.pipeline.stages import ChunkData, ChunkResult, ChunkTask, Gate, JobConfig, RasterDone, StoredWindow
from landsight.predict.raster import RasterPlan

log = logging.getLogger(__name__)

_NS = "landsight"


def _guarded(pcoll: PCollection, label: str, fn: beam.DoFn) -> tuple[PCollection, PCollection]:
    """Apply `fn`; return (outputs, dead letters as (image, stage, error, traceback))."""
    good, bad = pcoll | label >> beam.ParDo(fn).with_exception_handling()
    return good, bad | f"{label}DeadLetters" >> beam.FlatMap(_dead_records, label)


def _image_of(element: Any) -> str:
    if isinstance(element, str):
        return element
    if isinstance(element, (ChunkTask, RasterDone)):
        return element.plan.image if isinstance(element, RasterDone) else element.image
    if isinstance(element, (ChunkData, ChunkResult)):
        return element.task.image
    if isinstance(element, tuple) and element and isinstance(element[0], RasterPlan):
        return element[0].image
    return repr(element)[:200]


def _dead_records(failure: tuple[Any, tuple[Any, str, list[str]]], stage: str) -> Iterator[tuple[str, str, str, str]]:
    """Beam's (element, (type, repr, traceback)) -> one record per input (a failed batch holds several)."""
    element, (_, text, trace) = failure
    error = trace[-1].strip() if trace else text
    for item in element if isinstance(element, list) else [element]:
        yield _image_of(item), stage, error, "".join(trace)


class _PlanFn(beam.DoFn):
    def __init__(self, config: JobConfig, gate_digest: str | None) -> None:
        self._config, self._gate_digest = config, gate_digest

    def process(self, image: str) -> Iterator[ChunkTask]:
        model_file = stages.load_model(self._config)
        if stages.is_complete(self._config, image, model_file.sha256, self._gate_digest):
            Metrics.counter(_NS, "rasters_skipped").inc()
            log.info("%s: outputs complete, skipped", image)
            return
        Metrics.counter(_NS, "rasters_planned").inc()
        yield from stages.plan_tasks(self._config, image, model_file)


class _ReadFn(beam.DoFn):
    def __init__(self, config: JobConfig, gate_bands: BandSpec | None) -> None:
        self._config, self._gate_bands = config, gate_bands

    def process(self, task: ChunkTask) -> Iterator[ChunkData]:
        yield stages.read_task(task, stages.load_model(self._config), self._gate_bands)


class _GateFn(beam.DoFn):
    def __init__(self, config: JobConfig, gate: Gate | None) -> None:
        self._config, self._injected = config, gate
        self._gate: Gate | None = None

    def setup(self) -> None:
        self._gate = self._injected if self._injected is not None else stages.load_gate(self._config)

    def process(self, data: ChunkData) -> Iterator[ChunkData | ChunkResult]:
        assert self._gate is not None
        clear, cloudy = stages.apply_gate(data, self._gate)
        if cloudy is not None:
            Metrics.counter(_NS, "windows_cloudy").inc(len(cloudy.results))
            yield cloudy
        if clear is not None:
            yield clear


_PARTS = beam.DoFn.StateParam(BagStateSpec("parts", PickleCoder()))
_COUNT = beam.DoFn.StateParam(ReadModifyWriteStateSpec("count", PickleCoder()))
_LAST = beam.DoFn.StateParam(ReadModifyWriteStateSpec("last", PickleCoder()))
_EMITTED = beam.DoFn.StateParam(ReadModifyWriteStateSpec("emitted", PickleCoder()))


class _CollectFn(beam.DoFn):
    """Per raster: keep chunk results until every window has arrived, then emit them all (stateful, so it works the
    same in batch and streaming mode, without waiting for a window of time to close)."""

    def process(self, element: tuple[str, ChunkResult], parts: Any = _PARTS,
                count: Any = _COUNT) -> Iterator[tuple[RasterPlan, list[StoredWindow]]]:
        _, result = element
        parts.add(result)
        seen = (count.read() or 0) + len(result.results)
        count.write(seen)
        if seen >= result.task.plan.n_windows:
            results = [r for chunk in parts.read() for r in chunk.results]
            parts.clear()
            count.clear()
            yield result.task.plan, results


class _WriteMaskFn(beam.DoFn):
    def __init__(self, config: JobConfig) -> None:
        self._config = config

    def process(self, element: tuple[RasterPlan, list[StoredWindow]]) -> Iterator[RasterDone]:
        yield stages.write_mask(self._config, stages.load_model(self._config), *element)


class _VectorizeFn(beam.DoFn):
    def __init__(self, config: JobConfig) -> None:
        self._config = config

    def process(self, done: RasterDone) -> Iterator[RasterDone]:
        yield stages.write_polygons(self._config, done)


class _StatsFn(beam.DoFn):
    def __init__(self, config: JobConfig, gate_digest: str | None) -> None:
        self._config, self._gate_digest = config, gate_digest

    def process(self, done: RasterDone) -> Iterator[str]:
        stages.write_stats(self._config, stages.load_model(self._config), done, self._gate_digest)
        Metrics.counter(_NS, "rasters_done").inc()
        yield done.plan.image


class _DeadLetterFn(beam.DoFn):
    def __init__(self, out_dir: str) -> None:
        self._out_dir = out_dir

    def process(self, record: tuple[str, str, str, str]) -> Iterator[str]:
        image, stage, error, trace = record
        log.warning("dead letter: %s failed in %s: %s", image, stage, error)
        Metrics.counter(_NS, "dead_letters").inc()
        yield str(stages.dead_letter(self._out_dir, image, stage, error, [trace]))


class SegmentRasters(beam.PTransform):
    """Raster paths -> masks, polygons and stats in `config.out_dir`; returns {"done", "dead_letter"} PCollections.

    Args:
        config: the job (model, output folder, windows, ...).
        gate: a cloud gate object (see `stages.Gate`); default: loaded from `config.cloud_model`, if any.
        gate_bands: bands the gate reads (required with a gate).
        gate_digest: identity of the gate, stored in completion markers.
        reshuffle: spread chunks over workers after planning (a GroupByKey; the streaming DirectRunner only fires
            those when it stops watching, so streaming pipelines leave it out).
    """

    def __init__(self, config: JobConfig, gate: Gate | None = None, gate_bands: BandSpec | None = None,
                 gate_digest: str | None = None, reshuffle: bool = True) -> None:
        super().__init__()
        self._config, self._gate, self._gate_bands, self._gate_digest = config, gate, gate_bands, gate_digest
        self._reshuffle = reshuffle

    def expand(self, images: PCollection) -> dict[str, PCollection]:
        config = self._config
        tasks, bad_plan = _guarded(images, "PlanRasters", _PlanFn(config, self._gate_digest))
        if self._reshuffle:
            tasks = tasks | "Distribute" >> beam.Reshuffle()
        data, bad_read = _guarded(tasks, "ReadWindows", _ReadFn(config, self._gate_bands))
        dead = [bad_plan, bad_read]
        skipped: list[PCollection] = []
        if self._gate_bands is not None:
            gated, bad_gate = _guarded(data, "CloudGate", _GateFn(config, self._gate))
            # Beam types Partition's fn as WithTypeHints, though it documents (and wraps) plain callables.
            split = beam.Partition(lambda e, _: int(isinstance(e, ChunkResult)), 2)  # type: ignore[arg-type]
            data, cloudy = gated | "SplitCloudy" >> split
            skipped.append(cloudy)
            dead.append(bad_gate)
        handler = LandsightModelHandler(config.model, config.device, config.out_dir)
        segmented, dlq = data | "RunInference" >> RunInference(handler).with_exception_handling()
        dead.append(dlq.failed_inferences | "RunInferenceDeadLetters" >> beam.FlatMap(_dead_records, "RunInference"))
        rasters = ((segmented, *skipped) | "AllWindows" >> beam.Flatten()
                   | "ByRaster" >> beam.Map(lambda r: (r.task.key, r)).with_output_types(tuple[str, ChunkResult])
                   | "CollectWindows" >> beam.ParDo(_CollectFn()))
        masks, bad_mask = _guarded(rasters, "StitchWriteCOG", _WriteMaskFn(config))
        polygons, bad_vec = _guarded(masks, "Vectorize", _VectorizeFn(config))
        done, bad_stats = _guarded(polygons, "Stats", _StatsFn(config, self._gate_digest))
        dead += [bad_mask, bad_vec, bad_stats]
        letters = (dead | "DeadLetters" >> beam.Flatten()
                   | "WriteDeadLetters" >> beam.ParDo(_DeadLetterFn(config.out_dir)))
        return {"done": done, "dead_letter": letters}


def _stable_candidates(_: Any, pattern: str) -> Iterator[tuple[str, tuple[int, float]]]:
    """(path, (size, mtime)) of every file matching `pattern` now; hidden files (partial copies) are ignored."""
    for path in sorted(glob.glob(pattern)):
        if os.path.basename(path).startswith("."):
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        yield path, (st.st_size, st.st_mtime)


class _FirstStableSightingFn(beam.DoFn):
    """Emit a path once, the first time two polls in a row see it with the same size and mtime (fully written)."""

    def process(self, element: tuple[str, tuple[int, float]], last: Any = _LAST,
                emitted: Any = _EMITTED) -> Iterator[str]:
        path, signature = element
        if emitted.read():
            return
        if last.read() == signature:
            emitted.write(True)
            log.info("new raster: %s", path)
            yield path
        last.write(signature)


class WatchRasters(beam.PTransform):
    """New files matching `pattern`, polled every `poll_interval` s until `stop_after` s (None: forever), in fixed
    windows of `window_seconds` s (each window's files are batched together for inference)."""

    def __init__(self, pattern: str, poll_interval: float = 2.0, stop_after: float | None = None,
                 window_seconds: float = 10.0) -> None:
        super().__init__()
        self._pattern, self._poll, self._stop_after, self._window = pattern, poll_interval, stop_after, window_seconds

    def expand(self, begin: beam.pvalue.PBegin) -> PCollection:
        start = Timestamp.now()
        stop = start + self._stop_after if self._stop_after is not None else MAX_TIMESTAMP
        return (begin
                | "Poll" >> PeriodicImpulse(start_timestamp=start, stop_timestamp=stop, fire_interval=self._poll)
                | "List" >> beam.FlatMap(_stable_candidates, self._pattern).with_output_types(tuple[str, Any])
                | "FirstStableSighting" >> beam.ParDo(_FirstStableSightingFn())
                | "FixedWindows" >> beam.WindowInto(FixedWindows(self._window)))
