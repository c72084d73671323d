"""Models the server answers with, loaded once at start: a MODEL file (PyTorch) or its ONNX export."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from landsight.errors import CheckpointError
from landsight.imagery.bands import BandSpec, Normalization
from landsight.labels.classes import ClassTable
from landsight.models.model_file import ModelFile
from landsight.provenance import file_digest

Infer = Callable[[np.ndarray], np.ndarray]
"""(N, C, H, W) float32 -> (N, classes, H, W) probabilities (segmentation) or (N, classes) (classification)."""


@dataclasses.dataclass
class ServedModel:
    """One loaded model: its metadata (`model_file`, weights not needed after loading) and its inference function.

    Segmentation models take normalized windows (as `read_batch` makes them); classifiers take raw pixel values.
    """

    name: str
    model_file: ModelFile
    backend: str
    infer: Infer

    @property
    def task(self) -> str:
        """"segmentation" or "classification"."""
        return self.model_file.task

    @property
    def sha256(self) -> str:
        """Hex sha256 of the file the model was loaded from."""
        return self.model_file.sha256

    def metadata(self) -> dict[str, Any]:
        """What `GET /v1/models/{name}` answers: the MODEL metadata, sha256, backend."""
        return {"name": self.name, "backend": self.backend, "sha256": self.sha256, **self.model_file.metadata()}


def load_model(name: str, path: str | Path, backend: str = "torch", device: str = "auto") -> ServedModel:
    """Load a MODEL file (torch backend) or a `landsight export` ONNX file (onnx backend)."""
    if backend == "onnx":
        return _load_onnx(name, path)
    from landsight.models.model_file import load_model_file

    model_file = load_model_file(path, task=None)
    if model_file.task == "classification":
        from landsight.classify.classifier import Classifier

        classifier = Classifier(model_file, device)
        return ServedModel(name, model_file, "torch", lambda raw: classifier.probabilities(list(raw)))
    from landsight.predict.predictor import Predictor

    predictor = Predictor(model_file, device)
    model_file.state_dict = {}  # the network holds its own copy of the weights
    return ServedModel(name, model_file, "torch", predictor.probabilities)


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float32)


def _load_onnx(name: str, path: str | Path) -> ServedModel:
    from landsight.export.runtime import OnnxModel

    if not Path(path).is_file():
        raise CheckpointError(f"ONNX model not found: {path}; make one with `landsight export MODEL -o FILE.onnx`")
    onnx = OnnxModel(path)
    meta = onnx.metadata
    if onnx.task != "segmentation":
        raise CheckpointError(f"{path} is a {onnx.task} model; --backend onnx serves segmentation models only, "
                              "serve the MODEL file with --backend torch")
    model_file = ModelFile(
        arch=meta["arch"], encoder=meta["encoder"], bands=BandSpec.from_dict(meta["bands"]),
        normalization=Normalization.from_dict(meta["normalization"]), classes=ClassTable.from_list(meta["classes"]),
        chip_size=int(meta["chip_size"]), state_dict={}, task=onnx.task, options=meta.get("options", {}),
        landsight_version=meta.get("landsight_version", "?"), created=meta.get("created", ""),
        sha256=file_digest(path))
    return ServedModel(name, model_file, "onnx", lambda batch: _softmax(onnx.logits(batch)))
