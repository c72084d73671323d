"""Existing outputs, --overwrite, folders, `.`, inputs as outputs, unsafe input names, leftovers of killed runs.

`--overwrite` replaces only what the command itself writes: a file by a file, a folder only if a landsight command
made it (it holds `.landsight-output`), never the working directory, a folder holding an input, or an input.
Inputs here are copies in tmp_path: a failing case must not destroy the session's samples.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from landsight.outputs import write_marker
from tests.faults.conftest import (
    SCHEME,
    Kit,
    assert_refused,
    assert_succeeded,
    dead_pid,
    invoke,
    leftovers,
    live_pid,
    read_raster,
    tree,
)

Args = Callable[[Kit, Path], list[object]]


def copy(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(src, dst)
    return dst


def test_existing_output_is_kept_without_overwrite(kit: Kit) -> None:
    out = kit.out / "mask.tif"
    out.write_bytes(b"an earlier result")
    assert_refused(invoke("rasterize", kit.s.image, kit.s.labels, "-o", out), out, "--overwrite")
    assert out.read_bytes() == b"an earlier result"


def test_overwrite_replaces_a_file_output(kit: Kit) -> None:
    out = kit.out / "mask.tif"
    out.write_bytes(b"an earlier result")
    assert_succeeded(invoke("rasterize", kit.s.image, kit.s.labels, "-o", out, "--class-name", "building",
                            "--overwrite"))
    assert np.array_equal(read_raster(out), read_raster(kit.s.mask))
    assert not leftovers(kit.out)


FOLDER_OUTPUTS: dict[str, Args] = {
    "rasterize": lambda k, o: ["rasterize", k.s.image, k.s.labels, "-o", o],
    "predict": lambda k, o: ["predict", k.seg, k.s.image, "-o", o],
    "train": lambda k, o: ["train", k.s.image, k.s.labels, "-o", o, "--chip-size", "64"],
    "evaluate": lambda k, o: ["evaluate", k.pred, k.s.labels, "-o", o],
    "compare": lambda k, o: ["compare", k.pred, k.s.labels, "-o", o],
    "change": lambda k, o: ["change", k.s.image, k.s.image, "-o", o],
    "similar-index": lambda k, o: ["similar", "index", k.gate, k.s.scene, "-o", o],
}


@pytest.mark.parametrize("command", FOLDER_OUTPUTS)
def test_overwrite_never_replaces_a_foreign_folder(command: str, kit: Kit) -> None:
    """The issue's data loss: an output path naming an existing folder was deleted recursively."""
    folder = kit.out / "my-project"
    (folder / "notes").mkdir(parents=True)
    (folder / "notes" / "field-survey.txt").write_text("three weeks of work")
    (folder / "scene.tif").write_bytes(kit.s.image.read_bytes())
    before = tree(kit.out)
    assert_refused(invoke(*FOLDER_OUTPUTS[command](kit, folder), "--overwrite"), folder)
    assert tree(kit.out) == before


def test_overwrite_replaces_a_landsight_output_folder(kit: Kit) -> None:
    out = kit.out / "evaluation"
    assert_succeeded(invoke("evaluate", kit.pred, kit.s.labels, "-o", out))
    (out / "metrics.json").write_text("stale")
    assert_succeeded(invoke("evaluate", kit.pred, kit.s.labels, "-o", out, "--overwrite"))
    assert (out / "metrics.json").read_text() != "stale" and (out / ".landsight-output").is_file()
    assert not leftovers(kit.out)


DOT_OUTPUTS: dict[str, Args] = {
    "rasterize": lambda k, cwd: ["rasterize", cwd / "image.tif", cwd / "labels.geojson", "-o", "."],
    "evaluate": lambda k, cwd: ["evaluate", cwd / "prediction.tif", cwd / "labels.geojson", "-o", "."],
    "compare": lambda k, cwd: ["compare", cwd / "prediction.tif", cwd / "labels.geojson", "-o", "."],
    "change": lambda k, cwd: ["change", cwd / "image.tif", cwd / "image.tif", "-o", "."],
    "pipeline-run": lambda k, cwd: ["pipeline", "run", "--input", cwd / "image.tif", "--model", k.seg, "-o", ".",
                                    *SCHEME],
}


@pytest.mark.parametrize("command", DOT_OUTPUTS)
def test_working_directory_is_never_an_output(command: str, kit: Kit, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's data loss: `-o . --overwrite` emptied the working directory."""
    cwd = kit.tmp / "work"
    copy(kit.s.image, cwd / "image.tif")
    copy(kit.s.labels, cwd / "labels.geojson")
    copy(kit.pred, cwd / "prediction.tif")
    (cwd / "field-survey.txt").write_text("three weeks of work")
    write_marker(cwd)  # even a folder a landsight command once wrote: it is the working directory now
    before = tree(cwd)
    monkeypatch.chdir(cwd)
    args = DOT_OUTPUTS[command](kit, cwd)
    outcome = invoke(*args, *([] if command == "pipeline-run" else ["--overwrite"]))
    assert_refused(outcome)
    named = ("working directory", str(cwd), "image.tif", "prediction.tif")
    assert re.search(r"(^|\s)\.(\s|$)", outcome.output) or any(n in outcome.output for n in named), outcome.output
    assert tree(cwd) == before


def test_a_folder_holding_an_input_is_never_replaced(kit: Kit) -> None:
    folder = kit.tmp / "results"
    pred = copy(kit.pred, folder / "prediction.tif")
    write_marker(folder)  # a landsight output folder, but it holds this command's input
    before = tree(folder)
    assert_refused(invoke("evaluate", pred, kit.s.labels, "-o", folder, "--overwrite"), folder)
    assert tree(folder) == before


SELF_OUTPUTS: dict[str, tuple[str, Args]] = {
    "predict-image": ("image.tif", lambda k, i: ["predict", k.seg, i, "-o", i]),
    "rasterize-image": ("image.tif", lambda k, i: ["rasterize", i, k.s.labels, "-o", i]),
    "rasterize-labels": ("labels.geojson", lambda k, i: ["rasterize", k.s.image, i, "-o", i]),
    "vectorize-mask": ("mask.tif", lambda k, i: ["vectorize", i, "-o", i]),
    "dataset-check-labels": ("labels.geojson", lambda k, i: ["dataset", "check", k.s.image, i, "--json", i]),
    "similar-index-model": ("gate.pt", lambda k, i: ["similar", "index", i, k.s.scene, "-o", i]),
    "export-model": ("gate.pt", lambda k, i: ["export", i, "--onnx", i]),
    "cloud-filter-mask": ("scene.tif", lambda k, i: ["cloud", "filter", k.gate, i, "-o", k.out / "chips.csv",
                                                     "--mask", i]),
    "classify-predict-chip": ("chip.tif", lambda k, i: ["classify", "predict", k.gate, i, "-o", i]),
}
ORIGINALS: dict[str, Callable[[Kit], Path]] = {
    "image.tif": lambda k: k.s.image, "labels.geojson": lambda k: k.s.labels, "mask.tif": lambda k: k.s.mask,
    "gate.pt": lambda k: k.gate, "scene.tif": lambda k: k.s.scene, "chip.tif": lambda k: k.s.chip,
}


@pytest.mark.parametrize("case", SELF_OUTPUTS)
def test_an_input_is_never_an_output(case: str, kit: Kit) -> None:
    """The issue's `predict m.pt img.tif -o img.tif --overwrite`: refused, the input unchanged."""
    name, args = SELF_OUTPUTS[case]
    original = ORIGINALS[name](kit)
    the_input = copy(original, kit.tmp / "inputs" / name)
    assert_refused(invoke(*args(kit, the_input), "--overwrite"), the_input)
    assert the_input.read_bytes() == original.read_bytes()
    assert kit.outputs() == [] and not leftovers(the_input.parent)


def test_dot_dot_stem_keeps_the_other_outputs(kit: Kit) -> None:
    """The issue's data loss: an input named `...tif` made the spill folder the output folder, whose cleanup
    deleted the other inputs' finished outputs. Derived names are sanitised and stay inside the output folder."""
    inputs = kit.tmp / "scenes"
    for name in ("a.tif", "b.tif", "...tif"):
        copy(kit.s.image, inputs / name)
    out = kit.out / "pipeline"
    outside = tree(kit.tmp / "scenes")
    outcome = invoke("pipeline", "run", "--input", inputs, "--model", kit.seg, "-o", out, *SCHEME)
    assert_succeeded(outcome)
    assert "3 raster(s) done" in outcome.output
    assert np.array_equal(read_raster(out / "a.tif"), read_raster(out / "b.tif"))
    assert (out / "a.done.json").is_file() and (out / "b.done.json").is_file()
    assert len(list(out.glob("*.done.json"))) == 3
    assert tree(kit.tmp / "scenes") == outside
    assert sorted(p.name for p in kit.tmp.iterdir()) == ["out", "scenes"]
    assert not leftovers(out)


def test_dataset_check_keeps_an_existing_report(kit: Kit) -> None:
    report = kit.out / "report.json"
    report.write_text('{"earlier": true}')
    assert_refused(invoke("dataset", "check", kit.s.image, kit.s.labels, "--json", report), report, "--overwrite")
    assert report.read_text() == '{"earlier": true}'


def test_train_refuses_an_existing_model_before_working(kit: Kit) -> None:
    model = kit.out / "m.pt"
    model.write_bytes(b"an earlier model")
    assert_refused(invoke("train", kit.s.image, kit.s.labels, "-o", model, "--chip-size", "64"), model, "--overwrite")
    assert model.read_bytes() == b"an earlier model"
    assert sorted(p.name for p in kit.out.iterdir()) == ["m.pt"]


def test_predict_removes_temporaries_of_killed_runs_only(kit: Kit) -> None:
    """Leftovers of a killed `predict` (its pid is gone) are removed by the next run writing the same output;
    those of a run still going (a live pid) are not."""
    out = kit.out / "pred.tif"
    dead, alive = dead_pid(), live_pid()
    stale = [kit.out / f".pred.tif.{dead}-k1ll3d.part.tif", kit.out / f".pred.tif.{dead}-k1ll3d.part.tif.strips.tif"]
    running = kit.out / f".pred.tif.{alive}-runn1ng.part.tif.strips.tif"
    for path in (*stale, running):
        path.write_bytes(b"half a raster")
    assert_succeeded(invoke("predict", kit.seg, kit.s.image, "-o", out, *SCHEME))
    read_raster(out)
    assert sorted(p.name for p in kit.out.iterdir()) == sorted([running.name, "pred.tif"])
