"""SIGKILL at seeded random points of `predict`, `train` and `pipeline run`, then the same command again: the rerun's
outputs are byte-identical to an uninterrupted run's and nothing else is left (no hidden temporaries, `.strips.tif`,
resume states, work folders or spilled windows).

Each command runs in a folder of its own (the same path every time, so paths written into outputs agree) as a child
of the zygote, which imported everything before forking: a kill point is a delay after the start of the command's own
work, a seeded random fraction of the uninterrupted run's time. Whatever a killed run left under a final name must
be complete. Every run gets the same SOURCE_DATE_EPOCH, the reproducible-builds convention landsight follows for the
creation time it records; nothing else is set aside.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from rasterio.windows import Window

from landsight.models.model_file import load_model_file
from tests.faults.conftest import ATLANTA, SCHEME, TINY_SEG, Kit, Zygote, crop, read_raster, tree

KILLS = 5
"""Kill points per command."""
SEED = 10
"""Seed of the kill points."""
ENV = {"SOURCE_DATE_EPOCH": "1700000000"}
"""The creation time recorded in outputs (see the module's docstring)."""


@dataclasses.dataclass(frozen=True)
class Job:
    """A command line run in `folder` and a check that what it left under final names is complete."""

    args: list[object]
    check_complete: Callable[[Path], None]


def _complete_rasters(folder: Path) -> None:
    for path in folder.glob("[!.]*.tif"):
        read_raster(path)


def _complete_model(folder: Path) -> None:
    if (folder / "m.pt").exists():
        load_model_file(folder / "m.pt")


def differences(expected: dict[str, bytes | None], got: dict[str, bytes | None]) -> list[str]:
    """What differs between two `tree` snapshots: files missing, left over, or with other bytes (for text files,
    the first line that differs)."""
    found = [f"missing {name}" for name in sorted(set(expected) - set(got))]
    found += [f"left behind {name}" for name in sorted(set(got) - set(expected))]
    for name in sorted(set(expected) & set(got)):
        a, b = expected[name], got[name]
        if a == b:
            continue
        try:
            line = next((x, y) for x, y in zip(a.decode().splitlines(), b.decode().splitlines(), strict=False)
                        if x != y)
            found.append(f"{name} differs: {line[0][:120]!r} != {line[1][:120]!r}")
        except (UnicodeDecodeError, StopIteration, AttributeError):
            found.append(f"{name} differs ({len(a or b'')} vs {len(b or b'')} bytes)")
    return found


def _clear(folder: Path) -> None:
    for path in folder.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()


def kill_and_rerun(zygote: Zygote, job: Job, folder: Path, seed: int) -> None:
    """One uninterrupted run, then KILLS times: start, SIGKILL after a random share of its time, rerun, compare."""
    folder.mkdir()
    started = time.monotonic()
    reference = zygote.run(job.args, folder, env=ENV)
    seconds = time.monotonic() - started
    assert reference.rc == 0, reference.output
    expected = tree(folder)
    rng = random.Random(seed)
    killed, problems = 0, []
    for point in range(KILLS):
        _clear(folder)
        delay = rng.uniform(0.05, 0.95) * seconds
        pid = zygote.spawn(job.args, folder, folder.parent / f"killed-{point}.log", env=ENV)
        time.sleep(delay)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:  # it finished first
            pass
        killed += zygote.wait(pid) == -signal.SIGKILL
        job.check_complete(folder)
        rerun = zygote.run(job.args, folder, env=ENV)
        assert rerun.rc == 0, f"rerun after a kill at {delay:.2f} s:\n{rerun.output}"
        problems += [f"kill at {delay:.2f} s of {seconds:.2f} s: {d}" for d in differences(expected, tree(folder))]
    assert killed >= KILLS - 2, f"only {killed} of {KILLS} runs were killed before they finished"
    assert not problems, "\n".join(problems)


def test_killed_predict_reruns_to_the_same_output(kit: Kit, zygote: Zygote) -> None:
    image = crop(ATLANTA, kit.tmp / "scene.tif", Window(0, 0, 384, 256))
    job = Job(["predict", kit.seg, image, "-o", "pred.tif", "--probabilities", "--overwrite", *SCHEME],
              _complete_rasters)
    kill_and_rerun(zygote, job, kit.tmp / "predict", SEED)


def test_killed_train_reruns_to_the_same_model(kit: Kit, zygote: Zygote) -> None:
    settings = [*TINY_SEG[:-6], "--epochs", "2", "--chips-per-epoch", "8", "--batch-size", "4"]
    job = Job(["train", kit.s.image, kit.s.labels, "-o", "m.pt", "--class-name", "building", *settings,
               "--overwrite"], _complete_model)
    kill_and_rerun(zygote, job, kit.tmp / "train", SEED + 1)


def test_killed_pipeline_reruns_to_the_same_outputs(kit: Kit, zygote: Zygote) -> None:
    pytest.importorskip("apache_beam")
    inputs = kit.tmp / "scenes"
    inputs.mkdir()
    for i, (col, row) in enumerate([(0, 0), (300, 200), (100, 600)]):
        crop(ATLANTA, inputs / f"scene{i}.tif", Window(col, row, 256, 256))
    job = Job(["pipeline", "run", "--input", inputs, "--model", kit.seg, "-o", "out", *SCHEME],
              lambda folder: _complete_rasters(folder / "out"))
    kill_and_rerun(zygote, job, kit.tmp / "pipeline", SEED + 2)
