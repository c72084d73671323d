"""The Flink engine: the stages as a PyFlink DataStream job on a local Flink mini-cluster, in its own environment.

apache-flink pins an older apache-beam, pandas and pyarrow than the main environment, so the job runs in the
interpreter of a separate virtualenv (scripts/flink-env.sh makes `.venv-flink`); this launcher, which needs neither
Flink nor Beam, writes a job file and starts `python -m landsight.pipeline.flink_job JOB` there.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from landsight.errors import LandsightError, MissingExtraError
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


def run_flink(inputs: str | Sequence[str], config: JobConfig, parallelism: int = 1, python: str | Path | None = None,
              timeout: float | None = None) -> dict[str, Any]:
    """Segment rasters with the PyFlink job on a local mini-cluster; returns what happened to each input.

    Args:
        inputs: rasters (see `expand_inputs`).
        config: model, output folder and window scheme (as for `run_pipeline`).
        parallelism: Flink parallelism (task slots of the mini-cluster).
        python: the Flink environment's interpreter (default: see `flink_python`).
        timeout: seconds before the job is killed (None: no limit).
    """
    images = expand_inputs(inputs)
    stages.check_unique_keys(images)
    interpreter = flink_python(python)
    stages.load_model(config)  # refuse a bad model file before writing anything
    output_folder(config.out_dir, [i for i in images if not is_remote(i)])
    stages.clean_partials(config.out_dir)
    with tempfile.TemporaryDirectory(prefix="landsight-flink-") as tmp:
        job = Path(tmp) / "job.json"
        job.write_text(json.dumps({"images": images, "config": json.loads(config.to_json()),
                                   "parallelism": parallelism}))
        log.info("running the Flink job with %s", interpreter)
        proc = subprocess.run([str(interpreter), "-m", "landsight.pipeline.flink_job", str(job)], capture_output=True,
                              text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise LandsightError(f"the Flink job failed (exit {proc.returncode}): {(proc.stderr or proc.stdout)[-3000:]}")
    return stages.summarize(config.out_dir, images)
