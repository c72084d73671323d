"""A loaded segmentation model ready for inference on normalized batches: one per process (or Beam worker)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import numpy as np
import torch

from landsight.errors import ConfigError
from landsight.models.backends import Backend, OnnxBackend, TorchBackend, load_backend
from landsight.models.model_file import ModelFile
from landsight.models.onnx_runtime import OnnxModel, class_probabilities
from landsight.models.registry import PIXEL_FOREST

log = logging.getLogger(__name__)

BACKENDS = ("auto", "torch", "onnx")
"""Where `predict_raster` runs a MODEL file's network: "torch" (PyTorch), "onnx" (ONNX Runtime on the CPU, from an
in-memory export made at start) or "auto": ONNX Runtime for large fp32 work on the CPU (see `ONNX_MIN_PIXELS`)."""

ONNX_MIN_PIXELS = 4 * 1024 * 1024
"""Pixels of network input from which "auto" exports a MODEL file to ONNX Runtime for a CPU run: the export costs
about 4 CPU-seconds, and ONNX Runtime ran the Lite0 U-Net about 1.8x faster than channels-last PyTorch on an AVX2 CPU
(bench/predict_peers.py), which pays the export back after about 40 tiles of 256 x 256 px."""


class Predictor:
    """A segmentation model's metadata and forward pass (PyTorch or ONNX Runtime, see `load_backend`):
    normalized (N, C, H, W) float32 -> (N, classes, H, W) probabilities."""

    def __init__(self, model_file: ModelFile, backend: Backend | None = None, device: str = "auto") -> None:
        self.model_file = model_file
        self.backend = backend if backend is not None else TorchBackend(model_file, device)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto", precision: str = "auto") -> Predictor:
        """A segmentation MODEL file on `device` (in `precision`), or its ONNX export (`.onnx`) on ONNX Runtime."""
        return cls(*load_backend(path, device, task="segmentation", precision=precision))

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax class probabilities for a normalized batch; spatial size must be a multiple of 32."""
        return class_probabilities(self.backend.logits(batch))

    def on_onnx_runtime(self) -> Predictor:
        """The same model on ONNX Runtime (CPU), exported in memory from its PyTorch network; `self` when it
        already runs there."""
        if not isinstance(self.backend, TorchBackend):
            return self
        from landsight.export.onnx import export_in_memory

        if self.model_file.arch == PIXEL_FOREST:
            raise ConfigError("`backend` onnx cannot run the pixel baseline (a random forest); use `backend` torch")
        runtime = OnnxModel(export_in_memory(self.backend.model, self.model_file), threads=torch.get_num_threads())
        return Predictor(self.model_file, OnnxBackend(runtime))


def choose_backend(predictor: Predictor, backend: str, pixels: int) -> Predictor:
    """`predictor` on the backend `backend` asks for (see `BACKENDS`), for a run over `pixels` px of network input."""
    if backend not in BACKENDS:
        raise ConfigError(f"`backend` {backend!r}: choose from {list(BACKENDS)}")
    if backend == "onnx":
        return predictor.on_onnx_runtime()
    if backend == "torch" or not _onnx_worthwhile(predictor, pixels):
        return predictor
    log.info("running the network on ONNX Runtime (in-memory export; `backend` torch keeps PyTorch)")
    return predictor.on_onnx_runtime()


def _onnx_worthwhile(predictor: Predictor, pixels: int) -> bool:
    torch_backend = predictor.backend
    return (isinstance(torch_backend, TorchBackend) and torch_backend.device.type == "cpu"
            and torch_backend.precision == "fp32" and predictor.model_file.arch != PIXEL_FOREST
            and pixels >= ONNX_MIN_PIXELS and all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime")))
