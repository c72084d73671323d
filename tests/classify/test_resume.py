"""`classify train` and `cloud train` run again after an interruption continue where they stopped: finished candidates
are not retrained, the interrupted one continues from its last epoch, and the model equals an uninterrupted run's;
`--restart` starts over; a planted, damaged or foreign resume folder is refused (exit 2)."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from landsight.classify import automl
from landsight.classify import train as train_module
from landsight.learn.policy import EpochPolicy
from landsight.models.model_file import load_model_file
from tests.classify.conftest import L8, L8_QA, run

SEARCH = ["--backbones", "resnet18,mobilenetv3_large_100", "--budget", "90s", "--max-epochs", "2", "--no-lr-search"]
"""Two candidates of two epochs each: the budget never binds, so the outcome does not depend on timing and a resumed
run must end with the uninterrupted run's weights."""


class Payload:
    """Unpickling this runs `os.mkdir(marker)`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


@pytest.fixture
def trials(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, bool]]:
    """(candidate, whether it had a resume state) of every `run_trial` call the search makes."""
    calls: list[tuple[str, bool]] = []
    real = automl.run_trial

    def counted(trial, *args, **kwargs):
        calls.append((trial.label(), args[-1] is not None and args[-1].exists()))
        return real(trial, *args, **kwargs)

    monkeypatch.setattr(automl, "run_trial", counted)
    return calls


def _interrupt_after(epochs: int) -> pytest.MonkeyPatch:
    """A patch raising KeyboardInterrupt (as Ctrl-C does) once `epochs` epochs have ended and saved their state."""
    done = [0]
    original = EpochPolicy.on_train_epoch_end

    def interrupting(self, trainer, module):
        original(self, trainer, module)
        done[0] += 1
        if done[0] == epochs:
            raise KeyboardInterrupt

    patch = pytest.MonkeyPatch()
    patch.setattr(EpochPolicy, "on_train_epoch_end", interrupting)
    return patch


def _weights(model: Path) -> dict[str, torch.Tensor]:
    return load_model_file(model, task="classification").state_dict


@pytest.fixture(scope="module")
def interrupted(chip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The output of a search stopped in the second epoch of its second candidate (after 3 epochs in all)."""
    out = tmp_path_factory.mktemp("interrupted") / "m.pt"
    patch = _interrupt_after(3)
    try:
        result = run("classify", "train", chip_dir, "-o", out, *SEARCH)
    finally:
        patch.undo()
    assert result.exit_code != 0 and not out.exists(), result.output
    folder = out.with_name("m.pt.resume")
    state = json.loads((folder / "search.json").read_text())
    assert len(state["finished"]) == 1 and len(state["plans"]) == 2 and state["search"] is None
    assert (folder / "finished-0.pt").exists() and (folder / "running-1.resume.pt").exists()
    yield out


def _copy(interrupted: Path, out: Path) -> Path:
    """`out` with a copy of the interrupted run's resume folder beside it (the key does not depend on the output)."""
    folder = out.with_name(out.name + ".resume")
    shutil.copytree(interrupted.with_name(interrupted.name + ".resume"), folder)
    return folder


def test_a_resumed_search_trains_only_what_is_left_and_ends_like_an_uninterrupted_one(
        interrupted, chip_dir, tmp_path, trials):
    resumed = tmp_path / "resumed.pt"
    folder = _copy(interrupted, resumed)
    result = run("classify", "train", chip_dir, "-o", resumed, *SEARCH)
    assert result.exit_code == 0, result.output
    assert trials == [("mobilenetv3_large_100 lr=0.002 (scratch)", True)]  # only the interrupted one, continued
    assert not folder.exists()
    report = json.loads((tmp_path / "resumed-report.json").read_text())
    assert [c["epochs"] for c in report["candidates"]] == [2, 2]
    assert [r["epoch"] for r in report["history"]] == [1, 2] * 2

    trials.clear()
    whole = tmp_path / "whole.pt"
    assert run("classify", "train", chip_dir, "-o", whole, *SEARCH).exit_code == 0
    assert len(trials) == 2
    expected = _weights(whole)
    got = _weights(resumed)
    assert got.keys() == expected.keys()
    assert all(torch.equal(got[k], expected[k]) for k in expected)


def test_restart_trains_again_from_the_start(interrupted, chip_dir, tmp_path, trials):
    out = tmp_path / "again.pt"
    folder = _copy(interrupted, out)
    result = run("classify", "train", chip_dir, "-o", out, "--backbones", "resnet18", "--max-epochs", "1",
                 "--no-lr-search", "--restart")
    assert result.exit_code == 0, result.output
    assert trials == [("resnet18 lr=0.002 (scratch)", False)]  # finished by the interrupted run, trained again
    assert not folder.exists() and out.exists()


def test_a_planted_finished_candidate_runs_no_code_and_is_refused(interrupted, chip_dir, tmp_path):
    out, marker = tmp_path / "planted.pt", tmp_path / "ran"
    folder = _copy(interrupted, out)
    torch.save({"run_key": "x", "payload": Payload(marker)}, folder / "finished-0.pt")
    result = run("classify", "train", chip_dir, "-o", out, *SEARCH)
    assert result.exit_code == 2 and "finished-0.pt" in result.output and "--restart" in result.output
    assert not marker.exists() and not out.exists() and folder.exists()  # an earlier run's folder is left alone


@pytest.mark.parametrize("change", ["other settings", "damaged state"])
def test_a_foreign_or_damaged_resume_folder_is_refused(interrupted, chip_dir, tmp_path, change):
    out = tmp_path / "other.pt"
    folder = _copy(interrupted, out)
    args = [*SEARCH, "--seed", "1"]
    if change == "damaged state":
        (folder / "search.json").write_text('{"run_key": 3}')
        args = SEARCH
    result = run("classify", "train", chip_dir, "-o", out, *args)
    assert result.exit_code == 2 and "--restart" in result.output, result.output
    assert ("other settings or data" if change == "other settings" else "damaged") in result.output
    assert not out.exists() and folder.exists()


def test_an_interrupted_ensemble_member_continues_without_a_new_search(tmp_path, trials, monkeypatch):
    out = tmp_path / "ensemble.pt"
    args = ["cloud", "train", L8, "--cloud-mask", L8_QA, "--chip-size", "32", "--stride", "64", "-o", out,
            "--backbones", "resnet18", *SEARCH[2:], "--ensemble", "2"]
    patch = _interrupt_after(3)  # the candidate's two epochs and the second member's first
    try:
        assert run(*args).exit_code != 0
    finally:
        patch.undo()
    trials.clear()
    members = []
    real = train_module.run_trial
    monkeypatch.setattr(train_module, "run_trial", lambda *a, **kw: members.append(kw["resume_path"].exists())
                        or real(*a, **kw))
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert trials == [] and members == [True]  # no candidate trained again; the member continued from its epoch 1
    assert [m["epochs"] for m in json.loads((tmp_path / "ensemble-report.json").read_text())["ensemble"]] == [2, 2]
    assert not out.with_name("ensemble.pt.resume").exists()
