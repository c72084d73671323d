"""A loaded segmentation model ready for inference on normalized batches: one per process (or Beam worker)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from landsight.models.backends import Backend, TorchBackend, load_backend
from landsight.models.model_file import ModelFile
from landsight.models.onnx_runtime import class_probabilities


class Predictor:
    """A segmentation model's metadata and forward pass (PyTorch or ONNX Runtime, see `load_backend`):
    normalized (N, C, H, W) float32 -> (N, classes, H, W) probabilities."""

    def __init__(self, model_file: ModelFile, backend: Backend | None = None, device: str = "auto") -> None:
        self.model_file = model_file
        self.backend = backend if backend is not None else TorchBackend(model_file, device)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Predictor:
        """A segmentation MODEL file on `device`, or its ONNX export (`.onnx`) on ONNX Runtime."""
        return cls(*load_backend(path, device, task="segmentation"))

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax class probabilities for a normalized batch; spatial size must be a multiple of 32."""
        return class_probabilities(self.backend.logits(batch))
