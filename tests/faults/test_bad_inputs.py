"""Every command against missing, empty, truncated and corrupt inputs: exit 2, no traceback, the file named, no output.

A case names the broken file's kind, its file name, the valid file it is cut from (truncated: the first third of it)
and the command line; the broken file is built in the test's tmp_path and must be named by the message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from tests.faults.conftest import Kit, assert_refused, bad_file, invoke

Args = Callable[[Kit, Path], list[object]]
Like = Callable[[Kit], Path]


@dataclasses.dataclass(frozen=True)
class Case:
    """`landsight ARGS(kit, bad)` with `bad` a `kind` file named `name`, cut from `like(kit)` when truncated."""

    id: str
    kind: str
    name: str
    args: Args
    like: Like | None = None


def _image(k: Kit) -> Path:
    return k.s.image


def _labels(k: Kit) -> Path:
    return k.s.labels


def _mask(k: Kit) -> Path:
    return k.s.mask


def _seg(k: Kit) -> Path:
    return k.seg


def _gate(k: Kit) -> Path:
    return k.gate


def _pred(k: Kit) -> Path:
    return k.pred


def _index(k: Kit) -> Path:
    return k.index


def _rasterize_image(k: Kit, bad: Path) -> list[object]:
    return ["rasterize", bad, k.s.labels, "-o", k.out / "mask.tif"]


def _rasterize_labels(k: Kit, bad: Path) -> list[object]:
    return ["rasterize", k.s.image, bad, "-o", k.out / "mask.tif"]


def _info(k: Kit, bad: Path) -> list[object]:
    return ["info", bad]


CASES = [
    *(Case(f"rasterize-image-{kind}", kind, f"{kind}-image.tif", _rasterize_image, _image)
      for kind in ("missing", "empty", "truncated", "corrupt")),
    *(Case(f"rasterize-labels-{kind}", kind, f"{kind}-labels.geojson", _rasterize_labels, _labels)
      for kind in ("missing", "empty", "truncated", "corrupt")),
    Case("dataset-check-image-truncated", "truncated", "truncated-image.tif",
         lambda k, bad: ["dataset", "check", bad, k.s.labels, "--json", k.out / "report.json"], _image),
    Case("dataset-check-labels-corrupt", "corrupt", "corrupt-labels.geojson",
         lambda k, bad: ["dataset", "check", k.s.image, bad, "--json", k.out / "report.json"]),
    Case("train-image-corrupt", "corrupt", "corrupt-image.tif",
         lambda k, bad: ["train", bad, k.s.labels, "-o", k.out / "m.pt", "--chip-size", "64"]),
    Case("train-labels-truncated", "truncated", "truncated-labels.geojson",
         lambda k, bad: ["train", k.s.image, bad, "-o", k.out / "m.pt", "--chip-size", "64"], _labels),
    *(Case(f"info-model-{kind}", kind, f"{kind}-model.pt", _info, _seg)
      for kind in ("missing", "empty", "truncated", "corrupt")),
    Case("predict-model-truncated", "truncated", "truncated-model.pt",
         lambda k, bad: ["predict", bad, k.s.image, "-o", k.out / "pred.tif"], _seg),
    Case("predict-image-truncated", "truncated", "truncated-image.tif",
         lambda k, bad: ["predict", k.seg, bad, "-o", k.out / "pred.tif"], _image),
    Case("predict-image-corrupt", "corrupt", "corrupt-image.tif",
         lambda k, bad: ["predict", k.seg, bad, "-o", k.out / "pred.tif"]),
    Case("vectorize-mask-truncated", "truncated", "truncated-mask.tif",
         lambda k, bad: ["vectorize", bad, "-o", k.out / "polygons.geojson"], _mask),
    Case("vectorize-mask-empty", "empty", "empty-mask.tif",
         lambda k, bad: ["vectorize", bad, "-o", k.out / "polygons.geojson"]),
    Case("evaluate-prediction-corrupt", "corrupt", "corrupt-prediction.tif",
         lambda k, bad: ["evaluate", bad, k.s.labels, "-o", k.out / "evaluation"]),
    Case("evaluate-labels-truncated", "truncated", "truncated-labels.geojson",
         lambda k, bad: ["evaluate", k.pred, bad, "-o", k.out / "evaluation"], _labels),
    Case("compare-prediction-truncated", "truncated", "truncated-prediction.tif",
         lambda k, bad: ["compare", bad, k.s.labels, "-o", k.out / "comparison"], _pred),
    Case("compare-labels-corrupt", "corrupt", "corrupt-labels.geojson",
         lambda k, bad: ["compare", k.pred, bad, "-o", k.out / "comparison"]),
    Case("change-before-corrupt", "corrupt", "corrupt-before.tif",
         lambda k, bad: ["change", bad, k.s.image, "-o", k.out / "change"]),
    Case("change-after-truncated", "truncated", "truncated-after.tif",
         lambda k, bad: ["change", k.s.image, bad, "-o", k.out / "change"], _image),
    Case("change-model-truncated", "truncated", "truncated-model.pt",
         lambda k, bad: ["change", k.s.image, k.s.image, "--model", bad, "-o", k.out / "change"], _seg),
    Case("pipeline-model-truncated", "truncated", "truncated-model.pt",
         lambda k, bad: ["pipeline", "run", "--input", k.s.image, "--model", bad, "-o", k.out / "pipeline"], _seg),
    Case("classify-predict-model-truncated", "truncated", "truncated-model.pt",
         lambda k, bad: ["classify", "predict", bad, k.s.chip, "-o", k.out / "classes.csv"], _gate),
    Case("classify-predict-chip-corrupt", "corrupt", "corrupt-chip.tif",
         lambda k, bad: ["classify", "predict", k.gate, bad, "-o", k.out / "classes.csv"]),
    Case("classify-report-model-corrupt", "corrupt", "corrupt-model.pt", lambda k, bad: ["classify", "report", bad]),
    Case("classify-train-data-missing", "missing", "missing-chips",
         lambda k, bad: ["classify", "train", bad, "-o", k.out / "classifier.pt", "--budget", "30s"]),
    Case("cloud-train-mask-corrupt", "corrupt", "corrupt-qa.tif",
         lambda k, bad: ["cloud", "train", k.s.scene, "--cloud-mask", bad, "--chip-size", "32", "-o",
                         k.out / "gate.pt", "--budget", "30s"]),
    Case("cloud-filter-model-truncated", "truncated", "truncated-gate.pt",
         lambda k, bad: ["cloud", "filter", bad, k.s.scene, "-o", k.out / "chips.csv"], _gate),
    Case("cloud-filter-raster-truncated", "truncated", "truncated-scene.tif",
         lambda k, bad: ["cloud", "filter", k.gate, bad, "-o", k.out / "chips.csv"], lambda k: k.s.scene),
    Case("export-model-corrupt", "corrupt", "corrupt-model.pt",
         lambda k, bad: ["export", bad, "--onnx", k.out / "model.onnx"]),
    Case("similar-index-model-empty", "empty", "empty-model.pt",
         lambda k, bad: ["similar", "index", bad, k.s.scene, "-o", k.out / "index.npz"]),
    Case("similar-index-chips-corrupt", "corrupt", "corrupt-chip.tif",
         lambda k, bad: ["similar", "index", k.gate, bad, "-o", k.out / "index.npz"]),
    Case("similar-query-index-corrupt", "corrupt", "corrupt-index.npz",
         lambda k, bad: ["similar", "query", bad, k.s.chip, "--model", k.gate, "--html", k.out / "strip.html"]),
    Case("similar-query-index-truncated", "truncated", "truncated-index.npz",
         lambda k, bad: ["similar", "query", bad, k.s.chip, "--model", k.gate, "--html", k.out / "strip.html"],
         _index),
    Case("similar-query-image-corrupt", "corrupt", "corrupt-query.tif",
         lambda k, bad: ["similar", "query", k.index, bad, "--model", k.gate, "--html", k.out / "strip.html"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_input_is_refused(case: Case, kit: Kit) -> None:
    bad = bad_file(case.kind, kit.tmp / case.name, case.like(kit) if case.like else None)
    outcome = invoke(*case.args(kit, bad))
    assert_refused(outcome, bad)
    assert kit.outputs() == []


HALF_MODELS = {
    "info": ("segmentation", lambda k, model: ["info", model]),
    "predict": ("segmentation", lambda k, model: ["predict", model, k.s.image, "-o", k.out / "pred.tif"]),
    "classify-report": ("classification", lambda k, model: ["classify", "report", model]),
}


@pytest.mark.parametrize("command", HALF_MODELS)
def test_model_with_the_marker_but_missing_fields_is_refused(command: str, kit: Kit) -> None:
    task, args = HALF_MODELS[command]
    model = kit.tmp / "half-model.pt"
    torch.save({"format": "landsight-model", "format_version": 1, "task": task, "landsight_version": "0"}, model)
    assert_refused(invoke(*args(kit, model)), model)
    assert kit.outputs() == []
