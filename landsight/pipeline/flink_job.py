"""The PyFlink DataStream job behind the Flink engine (runs in the Flink environment; see `landsight.pipeline.flink`).

    images -> flat_map(plan) -> flat_map(read, gate, segment) -> key_by(raster) -> reduce(collect) -> flat_map(write)

Batch execution mode, so the keyed reduce emits each raster's windows once, complete. Each function calls the same
`landsight.pipeline.stages` functions as the Beam transforms; a failing input is written to the dead-letter folder
and dropped, and the job goes on.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from typing import Any

from pyflink.common import Configuration, Types
from pyflink.datastream import RuntimeExecutionMode, StreamExecutionEnvironment
from pyflink.datastream.functions import FlatMapFunction, RuntimeContext

from landsight.pipeline import stages
from landsight.pipeline.stages import ChunkResult, ChunkTask, JobConfig

log = logging.getLogger(__name__)


class _Plan(FlatMapFunction):  # type: ignore[misc]
    def __init__(self, config_json: str, gate_digest: str | None) -> None:
        self._config_json, self._gate_digest = config_json, gate_digest

    def flat_map(self, image: str) -> Iterator[ChunkTask]:
        config = JobConfig.from_json(self._config_json)
        try:
            model_file = stages.load_model(config)
            if not stages.is_complete(config, image, model_file.sha256, self._gate_digest):
                yield from stages.plan_tasks(config, image, model_file)
        except Exception as exc:
            stages.dead_letter(config.out_dir, image, "PlanRasters", exc)


class _Segment(FlatMapFunction):  # type: ignore[misc]
    def __init__(self, config_json: str) -> None:
        self._config_json = config_json

    def open(self, runtime_context: RuntimeContext) -> None:
        self._config = JobConfig.from_json(self._config_json)
        self._predictor = stages.load_predictor(self._config)
        self._gate = stages.load_gate(self._config)

    def flat_map(self, task: ChunkTask) -> Iterator[tuple[str, list[ChunkResult]]]:
        try:
            data = stages.read_task(task, self._predictor.model_file, self._gate.bands if self._gate else None)
            results: list[ChunkResult] = []
            if self._gate is not None:
                clear, cloudy = stages.apply_gate(data, self._gate)
                results += [cloudy] if cloudy is not None else []
                results += [stages.infer(clear, self._predictor, self._config.out_dir)] if clear is not None else []
            else:
                results.append(stages.infer(data, self._predictor, self._config.out_dir))
            yield task.key, results
        except Exception as exc:
            stages.dead_letter(self._config.out_dir, task.image, "Segment", exc)


class _Finish(FlatMapFunction):  # type: ignore[misc]
    def __init__(self, config_json: str, gate_digest: str | None) -> None:
        self._config_json, self._gate_digest = config_json, gate_digest

    def flat_map(self, element: tuple[str, list[ChunkResult]]) -> Iterator[str]:
        config = JobConfig.from_json(self._config_json)
        chunks = element[1]
        plan = chunks[0].task.plan
        stage = "StitchWriteCOG"
        try:
            model_file = stages.load_model(config)
            done = stages.write_mask(config, model_file, plan, [r for c in chunks for r in c.results])
            stage = "Vectorize"
            stages.write_polygons(config, done)
            stage = "Stats"
            stages.write_stats(config, model_file, done, self._gate_digest)
            yield plan.image
        except Exception as exc:
            stages.dead_letter(config.out_dir, plan.image, stage, exc)


def _merge(a: tuple[str, list[ChunkResult]], b: tuple[str, list[ChunkResult]]) -> tuple[str, list[ChunkResult]]:
    return a[0], a[1] + b[1]


def build(env: StreamExecutionEnvironment, images: list[str], config: JobConfig) -> Any:
    """Add the landsight job to `env`; returns the stream of finished images."""
    gate = stages.load_gate(config)
    digest = stages.gate_sha(config, gate)
    text = config.to_json()
    return (env.from_collection(images, type_info=Types.STRING())
            .flat_map(_Plan(text, digest)).name("PlanRasters")
            .rebalance()
            .flat_map(_Segment(text)).name("ReadGateSegment")
            .key_by(lambda kv: kv[0], key_type=Types.STRING())
            .reduce(_merge).name("CollectWindows")
            .flat_map(_Finish(text, digest), output_type=Types.STRING()).name("StitchVectorizeStats"))


def main(job_path: str) -> None:
    """Run the job described by a job file written by `run_flink`."""
    job = json.loads(open(job_path).read())
    config = JobConfig.from_json(json.dumps(job["config"]))
    flink_config = Configuration()
    flink_config.set_string("python.executable", sys.executable)
    flink_config.set_string("python.client.executable", sys.executable)
    # every stage at the job's parallelism: the adaptive batch scheduler would size stages by bytes (16 MiB a
    # task) and run a list of rasters on one slot
    flink_config.set_string("execution.batch.adaptive.auto-parallelism.enabled", "false")
    flink_config.set_string("restart-strategy.type", "fixed-delay")  # failed regions restart (the default)
    flink_config.set_string("restart-strategy.fixed-delay.attempts", str(job.get("restart_attempts", 3)))
    flink_config.set_string("restart-strategy.fixed-delay.delay", "2 s")
    env = StreamExecutionEnvironment.get_execution_environment(flink_config)
    env.set_runtime_mode(RuntimeExecutionMode.BATCH)
    env.set_parallelism(int(job.get("parallelism", 1)))
    finished = build(env, job["images"], config)
    with finished.execute_and_collect("landsight pipeline") as results:
        for image in results:
            log.info("done: %s", image)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    main(sys.argv[1])
