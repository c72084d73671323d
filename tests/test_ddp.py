"""Data-parallel training on the CPU: `landsight train --devices 2` (two processes, gloo) trains, and a run killed
mid-way (the whole process group, as Ctrl-C or a scheduler would) resumes after its last finished epoch."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.multiprocessing.spawn import ProcessRaisedException

from landsight.errors import TrainingError
from landsight.learn.fit import _worker_error
from landsight.models.model_file import load_model_file
from landsight.torch_utils import check_loss
from tests.conftest import SAMPLE

EPOCHS = 4


def _command(out: Path) -> list[str]:
    return [sys.executable, "-c", "from landsight.cli.main import cli; cli()", "train", str(SAMPLE / "atlanta.tif"),
            str(SAMPLE / "atlanta-buildings.geojson"), "-o", str(out), "--class-name", "building", "--arch", "fpn",
            "--encoder", "mobilenetv3_small_050", "--weights", "none", "--chip-size", "64", "--epochs", str(EPOCHS),
            "--chips-per-epoch", "8", "--batch-size", "4", "--devices", "2"]


def test_two_process_training_resumes_after_a_kill(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    resume = tmp_path / "m.pt.resume.pt"
    temp = tmp_path / "tmp"  # the runs' temporary files: what the killed one left, nothing from the finished one
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp)}
    run = subprocess.Popen(_command(out), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                           env=env)
    deadline = time.monotonic() + 300
    while not resume.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)  # the main process and both workers, after the first epoch's state is saved
    output = run.communicate()[0].decode()
    assert resume.exists() and not out.exists(), output

    left = set(temp.iterdir())
    resumed = subprocess.run(_command(out), capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "resuming from" in resumed.stdout + resumed.stderr
    model = load_model_file(out)
    assert model.training["epochs_run"] == EPOCHS and model.training["config"]["devices"] == 2
    assert model.metrics["mean_iou"] is not None
    with open(tmp_path / "m-metrics.csv") as handle:
        epochs = [row["epoch"] for row in csv.DictReader(handle)]
    assert epochs == [str(e) for e in range(1, EPOCHS + 1)] + ["baseline"]  # then the pixel baseline's scores
    assert not resume.exists() and not (tmp_path / "m.pt.work").exists()
    assert set(temp.iterdir()) == left  # Lightning's weights folder (mkdtemp) went with the run's scratch folder


def _diverge(rank: int) -> None:
    """A training process whose loss became NaN."""
    check_loss(float("nan"), 3, 0.01, "lower --lr")


def test_a_training_process_error_reaches_the_caller_with_its_advice() -> None:
    with pytest.raises(ProcessRaisedException) as raised:
        torch.multiprocessing.spawn(_diverge, nprocs=1)
    error = _worker_error(raised.value)
    assert isinstance(error, TrainingError) and str(error).startswith("the training loss became nan in epoch 3 ")
    assert "(peak learning rate 0.01)" in str(error) and str(error).endswith("; lower --lr")
    other = ProcessRaisedException("\n\n-- Process 1 terminated with the following error:\nTraceback (most recent "
                                   "call last):\n  ...\nRuntimeError: Connection closed by peer\n", 1, 4321)
    assert str(_worker_error(other)) == "a training process failed: RuntimeError: Connection closed by peer"
