"""`landsight export`: classification and segmentation MODEL files to ONNX, checked against PyTorch."""

import json

import numpy as np
import pytest
import rasterio

from landsight.classify.classifier import Classifier
from landsight.classify.network import create_classifier
from landsight.imagery.bands import BandSpec, Normalization
from landsight.labels.classes import ClassTable
from landsight.models.model_file import ModelFile
from landsight.models.onnx_runtime import OnnxModel
from landsight.models.registry import create_model
from tests.conftest import DATA

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

L8 = DATA / "landsat8-clouds" / "l8-crop.tif"
BANDS = BandSpec((1, 2, 3, 4), ("blue", "green", "red", "nir"))
NORM = Normalization((9500.0, 8800.0, 8300.0, 15000.0), (1400.0, 1500.0, 1600.0, 2300.0))
FAST = ["--bench-seconds", "0.2", "--batch-size", "8"]


@pytest.fixture(scope="module")
def classifier_file(tmp_path_factory):
    """A classification MODEL file (EfficientNet-Lite0 with the shipped ImageNet weights, untrained head)."""
    path = tmp_path_factory.mktemp("export") / "gate.pt"
    net = create_classifier("classifier", "tf_efficientnet_lite0", 4, 2, weights="imagenet")
    ModelFile("classifier", "tf_efficientnet_lite0", BANDS, NORM, ClassTable.from_names(["clear", "cloudy"], False),
              32, net.state_dict(), task="classification",
              options={"multi_label": False, "normalization_mode": "dataset", "tta": True}).save(path)
    return path


def _numbers(output):
    line = next(ln for ln in output.splitlines() if "max abs diff" in ln)
    return float(line.split("max abs diff of logits ")[1].split()[0])


def test_classifier_export_matches_pytorch_and_carries_metadata(invoke, classifier_file, tmp_path):
    out = tmp_path / "gate.onnx"
    result = invoke("export", classifier_file, "--onnx", out, *FAST)
    assert result.exit_code == 0, result.output
    assert _numbers(result.output) < 1e-3 and "within tolerance" in result.output
    assert "PyTorch" in result.output and "onnxruntime" in result.output and "chips/s" in result.output
    meta = json.loads({p.key: p.value for p in onnx.load(str(out)).metadata_props}["landsight"])
    assert meta["task"] == "classification" and meta["bands"]["names"] == ["blue", "green", "red", "nir"]
    assert meta["normalization"]["mean"][0] == 9500.0 and [c["name"] for c in meta["classes"]] == ["clear", "cloudy"]
    with rasterio.open(L8) as src:
        raw = np.stack([src.read(window=((r, r + 32), (c, c + 32))) for r in (0, 200) for c in (0, 64)])
    edge = OnnxModel(out)
    torch_side = Classifier.load(classifier_file, device="cpu").probabilities(list(raw.astype(np.float32)))
    np.testing.assert_allclose(edge.probabilities(raw.astype(np.float32)), torch_side, atol=1e-4)
    assert invoke("export", classifier_file, "--onnx", out).exit_code == 2  # exists: needs --overwrite


def test_int8_export_is_smaller(invoke, classifier_file, tmp_path):
    fp32, int8 = tmp_path / "a.onnx", tmp_path / "b.onnx"
    assert invoke("export", classifier_file, "--onnx", fp32, *FAST).exit_code == 0
    result = invoke("export", classifier_file, "--onnx", int8, "--int8", *FAST)
    assert result.exit_code == 0, result.output
    assert int8.stat().st_size < 0.5 * fp32.stat().st_size and "int8" in result.output


def test_segmentation_export_keeps_any_window_size(invoke, tmp_path):
    path = tmp_path / "seg.pt"
    net = create_model("unet", "tf_efficientnet_lite0", 4, 3, weights="imagenet")
    ModelFile("unet", "tf_efficientnet_lite0", BANDS, NORM, ClassTable.from_names(["water", "field"], True), 64,
              net.state_dict()).save(path)
    out = tmp_path / "seg.onnx"
    result = invoke("export", path, "--onnx", out, *FAST)
    assert result.exit_code == 0, result.output
    assert _numbers(result.output) < 1e-3 and "segmentation" in result.output
    edge = OnnxModel(out)
    assert edge.task == "segmentation" and edge.classes == ["background", "water", "field"]
    x = np.random.default_rng(1).standard_normal((1, 4, 96, 128), dtype=np.float32)
    import torch

    with torch.inference_mode():
        expected = net.eval()(torch.from_numpy(x)).numpy()
    assert edge.logits(x).shape == (1, 3, 96, 128)
    assert np.abs(edge.logits(x) - expected).max() < 1e-3
