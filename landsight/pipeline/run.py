"""`run_pipeline`: build and run the Beam pipeline, in batch over a list of rasters or streaming over a folder."""

from __future__ import annotations

import glob
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from landsight.pipeline import stages, storage
from landsight.pipeline.inputs import expand_inputs, is_remote, watch_pattern
from landsight.pipeline.stages import Gate, JobConfig
from landsight.pipeline.transforms import SegmentRasters, WatchRasters

log = logging.getLogger(__name__)

def pipeline_options(runner: str, beam_args: Sequence[str] = (), streaming: bool = False) -> PipelineOptions:
    """Beam options from a runner name and any extra Beam flags (e.g. --job_endpoint=localhost:8099)."""
    args = [f"--runner={runner}", *beam_args]
    if streaming:
        args.append("--streaming")
    return PipelineOptions(args)


def _gate_setup(config: JobConfig, gate: Gate | None) -> tuple[Gate | None, Any, str | None]:
    """(gate to ship, gate bands, gate identity); a gate from `cloud_model` is loaded here for its bands only."""
    loaded = gate if gate is not None else stages.load_gate(config)
    if loaded is None:
        return None, None, None
    return gate, loaded.bands, stages.gate_sha(config, loaded)


def run_pipeline(inputs: str | Sequence[str], config: JobConfig, runner: str = "DirectRunner",
                 beam_args: Sequence[str] = (), gate: Gate | None = None, streaming: bool = False,
                 stop_after: float | None = None, poll_interval: float = 2.0,
                 window_seconds: float = 10.0) -> dict[str, Any]:
    """Segment rasters with a Beam pipeline; returns what happened to each input (see `stages.summarize`).

    Args:
        inputs: rasters (see `expand_inputs`), or in streaming mode the directory or glob to watch.
        config: model, output folder and window scheme.
        runner: Beam runner name: DirectRunner (embedded default), PortableRunner, FlinkRunner, SparkRunner...
        beam_args: further Beam pipeline flags, passed through unchanged.
        gate: a cloud gate object (tests, notebooks); default: `config.cloud_model`, if given.
        streaming: watch `inputs` and process new files as they appear.
        stop_after: streaming: stop polling after this many seconds and drain (None: until interrupted).
        poll_interval: streaming: seconds between directory listings.
        window_seconds: streaming: fixed windows of time within which files are batched.
    """
    stages.load_model(config)  # fail early, with landsight's message, on a bad model file, before writing anything
    watched = [str(Path(watch_pattern(inputs)).parent)] if streaming else expand_inputs(inputs)
    storage.make_output_folder(config.out_dir, [i for i in watched if not is_remote(i)])
    removed = stages.clean_partials(config.out_dir)
    if removed:
        log.info("removed %d partial file(s) left by an interrupted run", removed)
    shipped, bands, digest = _gate_setup(config, gate)
    options = pipeline_options(runner, beam_args, streaming)
    pipeline = beam.Pipeline(options=options)
    if streaming:
        pattern = watch_pattern(inputs)
        images = pipeline | "WatchRasters" >> WatchRasters(pattern, poll_interval, stop_after, window_seconds)
    else:
        listed = expand_inputs(inputs)
        stages.check_unique_keys(listed)
        images = pipeline | "Inputs" >> beam.Create(listed)
    _ = images | "SegmentRasters" >> SegmentRasters(config, shipped, bands, digest, reshuffle=not streaming)
    result = pipeline.run()
    try:
        result.wait_until_finish()
    except KeyboardInterrupt:
        log.warning("interrupted: cancelling the pipeline; rerun to resume (completed rasters are skipped)")
        _cancel(result)
        raise
    seen = sorted(glob.glob(watch_pattern(inputs))) if streaming else expand_inputs(inputs)
    return stages.summarize(config.out_dir, [str(Path(s).resolve()) if not is_remote(s) else s for s in seen])


def _cancel(result: Any) -> None:
    try:
        result.cancel()
    except Exception as exc:
        log.debug("cancel failed: %s", exc)
