"""One predictor, two backends: every command that takes a MODEL file also takes its ONNX export and runs it on ONNX
Runtime (`predict`, `pipeline run`, `classify predict`, `cloud filter`), with the same answers as PyTorch."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import rasterio

from landsight.errors import CheckpointError
from landsight.models.backends import OnnxBackend, TorchBackend, load_backend
from landsight.provenance import file_digest
from tests.conftest import DATA

pytest.importorskip("onnxruntime")
L8 = DATA / "landsat8-clouds" / "l8-crop.tif"


@pytest.fixture(scope="module")
def building_onnx(atlanta_model, tmp_path_factory):
    from click.testing import CliRunner

    from landsight.cli.main import cli

    out = tmp_path_factory.mktemp("onnx") / "buildings.onnx"
    result = CliRunner().invoke(cli, ["export", str(atlanta_model), "--onnx", str(out), "--bench-seconds", "0.1"])
    assert result.exit_code == 0, result.output
    return out


def test_the_file_picks_the_backend(atlanta_model, building_onnx):
    torch_file, torch_backend = load_backend(atlanta_model, "cpu")
    onnx_file, onnx_backend = load_backend(building_onnx, "cpu")
    assert isinstance(torch_backend, TorchBackend) and isinstance(onnx_backend, OnnxBackend)
    assert onnx_file.bands == torch_file.bands and onnx_file.classes.names == torch_file.classes.names
    assert onnx_file.sha256 != torch_file.sha256 and not onnx_file.state_dict
    with pytest.raises(CheckpointError, match="segmentation model; this command needs a classification"):
        load_backend(building_onnx, "cpu", task="classification")


def test_predict_with_the_onnx_export_answers_like_pytorch(invoke, atlanta_model, building_onnx, atlanta_image,
                                                          tmp_path):
    masks = []
    for model in (atlanta_model, building_onnx):
        out = tmp_path / f"{model.suffix[1:]}.tif"
        result = invoke("predict", model, atlanta_image, "-o", out, "--window", "256", "--overlap", "32")
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as src:
            masks.append(src.read(1))
            sha = src.tags()["model_sha256"]
    assert sha == file_digest(building_onnx)  # outputs name the ONNX file they came from
    agree = (masks[0] == masks[1]).mean()
    assert agree > 0.999 and len(np.unique(masks[0])) > 1


def test_pipeline_runs_the_onnx_export(invoke, building_onnx, atlanta_image, atlanta_model, tmp_path):
    pytest.importorskip("apache_beam")
    reference = tmp_path / "ref.tif"
    assert invoke("predict", building_onnx, atlanta_image, "-o", reference).exit_code == 0
    result = invoke("pipeline", "run", "--input", atlanta_image, "--model", building_onnx, "-o", tmp_path / "out",
                    "--no-polygons")
    assert result.exit_code == 0, result.output
    with rasterio.open(tmp_path / "out" / "atlanta.tif") as a, rasterio.open(reference) as b:
        assert np.array_equal(a.read(), b.read())


def test_cloud_filter_and_classify_predict_run_the_onnx_export(invoke, tmp_path):
    from tests.classify.conftest import L8_QA, QUICK

    gate = tmp_path / "gate.pt"
    assert invoke("cloud", "train", L8, "--cloud-mask", L8_QA, "--chip-size", "32", "--stride", "48", "--backbones",
                  "resnet18", "-o", gate, *QUICK).exit_code == 0
    assert invoke("export", gate, "--onnx", tmp_path / "gate.onnx", "--bench-seconds", "0.1").exit_code == 0
    answers = []
    for model in (gate, tmp_path / "gate.onnx"):
        out = tmp_path / f"{model.suffix[1:]}.csv"
        assert invoke("cloud", "filter", model, L8, "-o", out).exit_code == 0
        with open(out) as handle:
            answers.append([(row["id"], row["cloudy"], float(row["p_cloudy"])) for row in csv.DictReader(handle)])
    assert [a[:2] for a in answers[0]] == [b[:2] for b in answers[1]]
    assert max(abs(a[2] - b[2]) for a, b in zip(*answers, strict=True)) < 1e-3
    result = invoke("classify", "predict", tmp_path / "gate.onnx", L8, "-o", tmp_path / "classes.csv")
    assert result.exit_code == 0 and "chip(s)" in result.output
