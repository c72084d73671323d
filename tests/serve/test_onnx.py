"""`--backend onnx`: the `landsight export` file run by ONNX Runtime answers like the PyTorch MODEL file."""

from __future__ import annotations

import httpx
import pytest

from landsight.provenance import file_digest
from landsight.serve import ServeConfig, create_app
from tests.serve.conftest import read_tif, run, running

pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install 'landsight[export]'")
pytest.importorskip("onnx", reason="the export extra is not installed: pip install 'landsight[export]'")


def test_onnx_backend_answers_like_predict(quick_model, crop, tmp_path):
    onnx_path = tmp_path / "buildings.onnx"
    result = run("export", quick_model, "--onnx", onnx_path, "--bench-seconds", "0.05", "--batch-size", "8")
    assert result.exit_code == 0, result.output
    reference = tmp_path / "reference.tif"
    assert run("predict", quick_model, crop, "-o", reference).exit_code == 0
    config = ServeConfig({"buildings": str(onnx_path)}, backend="onnx")
    with running(create_app(config)) as base:
        meta = httpx.get(f"{base}/v1/models/buildings").json()
        answer = httpx.post(f"{base}/v1/models/buildings/predict", content=crop.read_bytes(),
                            headers={"Content-Type": "image/tiff"}, timeout=120)
    assert meta["backend"] == "onnx" and meta["sha256"] == file_digest(onnx_path)
    assert [c["name"] for c in meta["classes"]] == ["background", "building"]
    served, _ = read_tif(answer.content, tmp_path / "served.tif")
    expected, _ = read_tif(reference.read_bytes(), tmp_path / "expected.tif")
    assert (served == expected).mean() >= 0.999  # fp32 kernels differ by ~1e-5 in logits (measured: 100 % equal)
