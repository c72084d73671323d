"""The Flink engine: the stages as a PyFlink DataStream job, in its own environment, on an embedded mini-cluster or
submitted to a running Flink cluster (`flink_master`).

apache-flink pins an older apache-beam, pandas and pyarrow than the main environment, so the job runs in the
interpreter of a separate virtualenv (scripts/flink-env.sh makes `.venv-flink`); this launcher, which needs neither
Flink nor Beam, writes a job file and starts `python -m landsight.pipeline.flink_job JOB` there. With a master,
PyFlink's gateway is started by `flink run -m HOST:PORT` (PyFlink's `SUBMIT_ARGS`), so the job goes to that
cluster's REST endpoint as `flink run -py` would send it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from landsight.errors import ConfigError, LandsightError, MissingExtraError
from landsight.outputs import output_folder
from landsight.pipeline import stages
from landsight.pipeline.inputs import expand_inputs, is_remote
from landsight.pipeline.stages import JobConfig

log = logging.getLogger(__name__)

FLINK_PYTHON_ENV = "LANDSIGHT_FLINK_PYTHON"
"""Environment variable naming the Flink environment's python (default: .venv-flink/bin/python of the checkout)."""


def flink_python(python: str | Path | None = None) -> Path:
    """The interpreter of the Flink environment; raises MissingExtraError, with the command to make it, if absent."""
    root = Path(__file__).resolve().parents[2]
    candidate = Path(python or os.environ.get(FLINK_PYTHON_ENV) or root / ".venv-flink" / "bin" / "python")
    if not candidate.exists():
        raise MissingExtraError(f"the Flink environment is missing ({candidate} not found); create it with "
                                f"scripts/flink-env.sh or point {FLINK_PYTHON_ENV} at a python with apache-flink")
    return candidate


def check_master(master: str, timeout: float = 10.0) -> str:
    """`master` as HOST:PORT once a Flink JobManager answers there (its REST `/overview`); ConfigError if not."""
    host, _, port = master.strip().removeprefix("http://").rstrip("/").rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"`flink_master` must be HOST:PORT of a Flink JobManager's REST endpoint, e.g. "
                          f"127.0.0.1:8081 (got {master!r})")
    try:
        with urllib.request.urlopen(f"http://{host}:{port}/overview", timeout=timeout) as answer:
            overview = json.loads(answer.read())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"no Flink JobManager answers at http://{host}:{port} (`flink_master`: {exc}); start a "
                          f"cluster (scripts/flink-cluster.sh start FOLDER prints its address) or fix the "
                          f"address") from exc
    if not overview.get("slots-total"):
        raise ConfigError(f"the Flink cluster at {host}:{port} (`flink_master`) has no TaskManager slots; start "
                          f"TaskManagers first")
    return f"{host}:{port}"


def run_flink(inputs: str | Sequence[str], config: JobConfig, parallelism: int = 1, python: str | Path | None = None,
              timeout: float | None = None, flink_master: str | None = None,
              restart_attempts: int = 3) -> dict[str, Any]:
    """Segment rasters with the PyFlink job; returns what happened to each input.

    Args:
        inputs: rasters (see `expand_inputs`).
        config: model, output folder and window scheme (as for `run_pipeline`).
        parallelism: Flink parallelism (task slots the job uses).
        python: the Flink environment's interpreter (default: see `flink_python`).
        timeout: seconds before the job's client is killed (None: no limit); a job on a cluster then keeps
            running there until it ends or is cancelled (Flink's web UI or REST API).
        flink_master: HOST:PORT of a running cluster's REST endpoint; None runs an embedded mini-cluster. Workers
            run the same interpreter path and must see the model, inputs and `out_dir` at the same paths.
        restart_attempts: restarts of failed tasks (fixed delay, 2 s) before the job fails.
    """
    images = expand_inputs(inputs)
    stages.check_unique_keys(images)
    interpreter = flink_python(python)
    if restart_attempts < 0:
        raise ConfigError(f"`restart_attempts` must be 0 or more (got {restart_attempts})")
    master = check_master(flink_master) if flink_master else None
    stages.load_model(config)  # refuse a bad model file before writing anything
    output_folder(config.out_dir, [i for i in images if not is_remote(i)])
    stages.clean_partials(config.out_dir)
    env = {**os.environ, "SUBMIT_ARGS": f"remote -m {master}"} if master else None
    with tempfile.TemporaryDirectory(prefix="landsight-flink-") as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"images": images, "config": json.loads(config.to_json()),
                                   "parallelism": parallelism, "restart_attempts": restart_attempts}))
        log.info("running the Flink job with %s on %s", interpreter, master or "an embedded mini-cluster")
        proc = subprocess.run([str(interpreter), "-m", "landsight.pipeline.flink_job", str(job)], capture_output=True,
                              text=True, timeout=timeout, check=False, env=env)
    if proc.returncode != 0:
        raise LandsightError(f"the Flink job failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-3000:]}")
    return stages.summarize(config.out_dir, images)
