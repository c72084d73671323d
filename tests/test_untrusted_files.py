"""Files landsight reads back are untrusted: a planted resume state or ensemble member never runs code, and foreign,
damaged or half-written resume states, model files, similarity indexes and reports are refused by name (exit 2)."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from landsight.classify.classifier import Classifier
from landsight.classify.network import ARCH, create_classifier
from landsight.classify.report import ReportPaths
from landsight.classify.similar import THUMB, SimilarityIndex
from landsight.cli.main import cli
from landsight.errors import CheckpointError
from landsight.imagery.bands import BandSpec, Normalization
from landsight.labels.classes import ClassTable
from landsight.learn.checkpoint import read_resume_state
from landsight.models.model_file import FORMAT_VERSION, ModelFile, load_model_file
from landsight.outputs import write_marker
from tests.conftest import DATA, SAMPLE

TINY = ["--arch", "fpn", "--encoder", "mobilenetv3_small_050", "--weights", "none", "--chip-size", "64",
        "--epochs", "1", "--chips-per-epoch", "8", "--batch-size", "4", "--class-name", "building"]
CHIP = DATA / "landsat8-clouds" / "l8-crop.tif"


class Payload:
    """Unpickling this runs `os.mkdir(marker)`: all a malicious file does here (under the test's tmp_path)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.mkdir, (str(self.marker),)


def _plant(path: Path, marker: Path, **plain: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({**plain, "payload": Payload(marker)}, path)
    return path


def _run(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _refused(result, *names: str) -> None:
    """Exit code 2 (a LandsightError; an escaped exception exits 1), no traceback, and each of `names` named."""
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    for name in names:
        assert name in result.output, result.output


def test_the_payload_runs_code_when_unpickled_with_pickle_enabled(tmp_path):
    marker = tmp_path / "ran"
    torch.load(_plant(tmp_path / "evil.pt", marker), weights_only=False)
    assert marker.is_dir()


def test_a_planted_resume_state_runs_no_code(tmp_path):
    marker, model = tmp_path / "ran", tmp_path / "out" / "m.pt"
    resume = _plant(tmp_path / "out" / "m.pt.resume.pt", marker, run_key="x")
    result = _run("train", SAMPLE / "atlanta.tif", SAMPLE / "atlanta-buildings.geojson", "-o", model, *TINY)
    assert not marker.exists()
    _refused(result, resume.name, "--restart")
    assert not model.exists() and not model.with_name("m.pt.work").exists()


def test_a_planted_ensemble_member_runs_no_code(tmp_path):
    marker, model = tmp_path / "ran", tmp_path / "out" / "m.pt"
    member = _plant(tmp_path / "out" / "m.pt.work" / "member-0.pt", marker, run_key="x")
    write_marker(member.parent)  # as an interrupted run leaves its work folder
    result = _run("train", SAMPLE / "atlanta.tif", SAMPLE / "atlanta-buildings.geojson", "-o", model, *TINY,
                  "--ensemble", "2")
    assert not marker.exists()
    _refused(result, member.name, "--restart")
    assert not model.exists()


def _write_garbage(path: Path, kind: str) -> None:
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "truncated":
        torch.save({"run_key": "k", "model": {"w": torch.zeros(1000)}}, path)
        path.write_bytes(path.read_bytes()[:300])
    elif kind == "a list":
        torch.save([1, 2, 3], path)
    elif kind == "other run":
        torch.save({"run_key": "other"}, path)
    elif kind == "missing parts":
        torch.save({"run_key": "k", "model": {}}, path)


@pytest.mark.parametrize("kind", ["empty", "random bytes", "truncated", "a list", "other run", "missing parts"])
def test_foreign_or_damaged_resume_states_are_refused(tmp_path, kind):
    path = tmp_path / "m.pt.resume.pt"
    _write_garbage(path, kind)
    with pytest.raises(CheckpointError, match=r"m\.pt\.resume\.pt.*`restart=True`"):
        read_resume_state(path, "k")


def _model_payload() -> dict:
    model = ModelFile(arch="fpn", encoder="mobilenetv3_small_050", bands=BandSpec((1,), ("b1",), 1),
                      normalization=Normalization((100.0,), (10.0,)),
                      classes=ClassTable.from_names(["building"], background=True), chip_size=64,
                      state_dict={"w": torch.ones(3)})
    return {**model.metadata(), "state_dict": model.state_dict}


BROKEN_MODELS = {
    "arch": lambda p: p.pop("arch"),
    "state_dict": lambda p: p.pop("state_dict"),
    "chip_size": lambda p: p.update(chip_size="64"),
    "bands": lambda p: p.update(bands={"names": ["b1"]}),
    "normalization": lambda p: p.update(normalization={"mean": [float("nan")], "std": [1.0]}),
    "classes": lambda p: p.update(classes=[{"name": "building"}]),
    "members": lambda p: p.update(members=True),
    "format_version": lambda p: p.update(format_version="1"),
    "'state_dict' holds NaN": lambda p: p.update(state_dict={"w": torch.tensor([1.0, float("inf")])}),
    "non-tensor": lambda p: p.update(state_dict={"w": [1.0]}),
}


@pytest.mark.parametrize("field", BROKEN_MODELS)
def test_model_files_with_the_marker_but_broken_fields_are_refused_by_name(tmp_path, field):
    payload = _model_payload()
    BROKEN_MODELS[field](payload)
    path = tmp_path / "half.pt"
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=field):
        load_model_file(path)
    result = _run("info", path)
    _refused(result, "half.pt", field)


def test_a_newer_model_format_is_refused_naming_both_versions(tmp_path):
    path = tmp_path / "future.pt"
    torch.save({**_model_payload(), "format_version": FORMAT_VERSION + 1, "landsight_version": "99.0"}, path)
    with pytest.raises(CheckpointError, match=rf"format version {FORMAT_VERSION + 1}.*99\.0.*up to {FORMAT_VERSION}"):
        load_model_file(path)
    result = _run("info", path)
    assert result.exit_code == 2 and "upgrade landsight" in result.output


@pytest.mark.parametrize("version", [0, None])
def test_older_model_formats_load(tmp_path, version):
    """A file of an older format (0, or no format_version: the first files) still loads."""
    payload = _model_payload()
    if version is None:
        del payload["format_version"]
    else:
        payload["format_version"] = version
    path = tmp_path / "old.pt"
    torch.save(payload, path)
    assert load_model_file(path).chip_size == 64


def test_an_intact_payload_loads(tmp_path):
    """The payload the broken-field cases start from is a valid model file (so each case tests its one field)."""
    path = tmp_path / "whole.pt"
    torch.save(_model_payload(), path)
    assert load_model_file(path).chip_size == 64


def test_a_classifier_with_damaged_options_is_refused():
    model = ModelFile(arch=ARCH, encoder="resnet18", bands=BandSpec((1,), ("b1",), 1),
                      normalization=Normalization((0.0,), (1.0,)),
                      classes=ClassTable.from_names(["clear", "cloudy"], background=False), chip_size=32,
                      state_dict=create_classifier(ARCH, "resnet18", 1, 2).state_dict(), task="classification",
                      options={"threshold": "high"})
    with pytest.raises(CheckpointError, match="options"):
        Classifier(model, device="cpu")


def _index(path: Path, n: int = 4, **change: object) -> Path:
    """An index file as `SimilarityIndex.save` writes it (n chips), with the parts in `change` replaced."""
    parts = {"vectors": np.eye(n, 8, dtype=np.float32), "thumbnails": np.zeros((n, THUMB, THUMB, 3), np.uint8),
             "meta": {"format": "landsight-similarity-index", "ids": [f"c{i}" for i in range(n)],
                      "labels": [None] * n, "model": {"path": "none.pt"}}} | change
    np.savez_compressed(path, vectors=parts["vectors"], thumbnails=parts["thumbnails"],
                        meta=np.array(json.dumps(parts["meta"])))
    return path


def test_the_index_the_broken_cases_start_from_loads(tmp_path):
    assert SimilarityIndex.load(_index(tmp_path / "ok.npz")).ids == ["c0", "c1", "c2", "c3"]


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


BROKEN_INDEXES = {
    "random bytes": lambda p: p.write_bytes(np.random.default_rng(1).bytes(2048)),
    "truncated": lambda p: p.write_bytes(_index(p).read_bytes()[:200]),
    "a .npy array": lambda p: p.write_bytes(_npy(np.zeros(3))),
    "no marker": lambda p: _index(p, meta={"ids": []}),
    "missing meta": lambda p: np.savez(p, vectors=np.zeros((2, 2))),
    "vectors of other chips": lambda p: _index(p, vectors=np.ones((3, 8), np.float32)),
    "NaN vectors": lambda p: _index(p, vectors=np.full((4, 8), np.nan, np.float32)),
    "thumbnails of another size": lambda p: _index(p, thumbnails=np.zeros((4, 8, 8, 3), np.uint8)),
}


@pytest.mark.parametrize("kind", BROKEN_INDEXES)
def test_corrupt_or_foreign_similarity_indexes_are_refused(tmp_path, kind):
    path = tmp_path / "index.npz"
    BROKEN_INDEXES[kind](path)
    result = _run("similar", "query", path, CHIP)
    _refused(result, "index.npz", "similar index")


def test_a_damaged_classifier_report_is_refused(tmp_path):
    model = tmp_path / "gate.pt"
    model.write_bytes(b"not read: the report JSON is")
    ReportPaths.for_model(model).json.write_text('{"test": {"f1": 0.9')
    result = _run("classify", "report", model)
    _refused(result, ReportPaths.for_model(model).json.name, "delete it")
