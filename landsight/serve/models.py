"""Models the server answers with, loaded once at start: a MODEL file (PyTorch) or its ONNX export."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from landsight.classify.classifier import Classifier
from landsight.errors import CheckpointError
from landsight.models.backends import load_backend
from landsight.models.model_file import ModelFile
from landsight.predict.predictor import Predictor

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
    if (Path(path).suffix.lower() == ".onnx") != (backend == "onnx"):
        runs = "ONNX exports (.onnx)" if backend == "onnx" else "MODEL files"
        raise CheckpointError(f"`backend` {backend} runs {runs}, not {path}; pass the matching file or backend")
    model_file, forward = load_backend(path, device)
    if model_file.task == "classification":
        classifier = Classifier(model_file, device, backend=forward)
        return ServedModel(name, model_file, forward.name, lambda raw: classifier.probabilities(list(raw)))
    return ServedModel(name, model_file, forward.name, Predictor(model_file, forward).probabilities)
