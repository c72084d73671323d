"""Planted files that run code when unpickled: model files, train's resume state and ensemble members, a similarity
index. None may run (the payload would write `marker` under the test's tmp_path); each is refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from landsight.outputs import write_marker
from tests.faults.conftest import (
    TINY_SEG,
    Kit,
    Malicious,
    assert_refused,
    assert_succeeded,
    invoke,
    leftovers,
    plant_malicious,
)

MODEL_COMMANDS = {
    "info": lambda k, m: ["info", m],
    "predict": lambda k, m: ["predict", m, k.s.image, "-o", k.out / "pred.tif"],
    "change": lambda k, m: ["change", k.s.image, k.s.image, "--model", m, "-o", k.out / "change"],
    "pipeline-run": lambda k, m: ["pipeline", "run", "--input", k.s.image, "--model", m, "-o", k.out / "pipeline"],
    "classify-predict": lambda k, m: ["classify", "predict", m, k.s.chip, "-o", k.out / "classes.csv"],
    "classify-report": lambda k, m: ["classify", "report", m],
    "cloud-filter": lambda k, m: ["cloud", "filter", m, k.s.scene, "-o", k.out / "chips.csv"],
    "export": lambda k, m: ["export", m, "--onnx", k.out / "model.onnx"],
    "similar-index": lambda k, m: ["similar", "index", m, k.s.scene, "-o", k.out / "index.npz"],
    "similar-query": lambda k, m: ["similar", "query", k.index, k.s.chip, "--model", m],
}


@pytest.mark.parametrize("command", MODEL_COMMANDS)
def test_malicious_model_file_runs_no_code(command: str, kit: Kit) -> None:
    marker = kit.tmp / "code-ran"
    model = plant_malicious(kit.tmp / "planted-model.pt", marker, format="landsight-model", format_version=1)
    outcome = invoke(*MODEL_COMMANDS[command](kit, model))
    assert not marker.exists(), "unpickling the model file ran code"
    assert_refused(outcome, model)
    assert kit.outputs() == []


def _train(kit: Kit, *extra: object) -> list[object]:
    return ["train", kit.s.image, kit.s.labels, "-o", kit.out / "m.pt", "--class-name", "building", *TINY_SEG,
            *extra]


def test_planted_resume_state_runs_no_code(kit: Kit) -> None:
    marker = kit.tmp / "code-ran"
    resume = plant_malicious(kit.out / "m.pt.resume.pt", marker, run_key="x")
    outcome = invoke(*_train(kit))
    assert not marker.exists(), "loading the resume state ran code"
    assert_refused(outcome, resume, "--restart")
    assert not (kit.out / "m.pt").exists() and not (kit.out / "m.pt.work").exists()


def test_restart_ignores_a_planted_resume_state(kit: Kit) -> None:
    marker = kit.tmp / "code-ran"
    plant_malicious(kit.out / "m.pt.resume.pt", marker, run_key="x")
    outcome = invoke(*_train(kit, "--restart"))
    assert not marker.exists(), "loading the resume state ran code"
    assert_succeeded(outcome)
    assert not leftovers(kit.out), leftovers(kit.out)


def test_planted_ensemble_member_runs_no_code(kit: Kit) -> None:
    marker = kit.tmp / "code-ran"
    member = plant_malicious(kit.out / "m.pt.work" / "member-0.pt", marker, run_key="x")
    write_marker(member.parent)  # as in the work folder of an interrupted run
    outcome = invoke(*_train(kit, "--ensemble", "2"))
    assert not marker.exists(), "loading a finished ensemble member ran code"
    assert_refused(outcome, member)
    assert not (kit.out / "m.pt").exists()


def test_similarity_index_with_pickled_objects_runs_no_code(kit: Kit) -> None:
    marker = kit.tmp / "code-ran"
    index = kit.tmp / "planted-index.npz"
    with np.load(kit.index) as real:
        arrays = dict(real)
    arrays["meta"] = np.array([Malicious(marker)], dtype=object)
    np.savez(index, **arrays)
    outcome = invoke("similar", "query", index, kit.s.chip, "--model", kit.gate, "--html", kit.out / "strip.html")
    assert not marker.exists(), "loading the index ran code"
    assert_refused(outcome, index)
    assert kit.outputs() == []


def test_fixture_payload_really_runs_code(tmp_path: Path) -> None:
    """The payload the tests plant does run code when unpickled with pickle enabled (so the tests above can fail)."""
    import torch

    marker = tmp_path / "code-ran"
    path = plant_malicious(tmp_path / "planted.pt", marker)
    torch.load(path, weights_only=False)
    assert marker.read_text() == "code ran"
