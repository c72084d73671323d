"""Run an exported ONNX model with onnxruntime alone (no torch): metadata, normalization, probabilities. The
ONNX backend of `landsight.models.backends` runs on it; a device with onnxruntime but no torch can use it directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from landsight.errors import CheckpointError, import_extra
from landsight.imagery.bands import BandSpec, Normalization
from landsight.imagery.flips import flip_views
from landsight.imagery.normalize import normalize

METADATA_KEY = "landsight"
"""ONNX metadata_props key holding the MODEL metadata as JSON (task, bands, normalization, classes, ...)."""


def require_onnxruntime() -> Any:
    """Import onnxruntime or explain how to install it."""
    return import_extra("onnxruntime", "ONNX export and inference need onnx and onnxruntime: "
                                       "pip install 'landsight[export]' (onnx, onnxruntime)")


class OnnxModel:
    """An exported landsight model: normalized (N, C, H, W) float32 in, logits out; metadata from the file."""

    def __init__(self, path: str | Path | bytes, threads: int | None = None) -> None:
        """`path`: an ONNX file, or the bytes of one (an in-memory export)."""
        ort = require_onnxruntime()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        name = "the in-memory ONNX export" if isinstance(path, bytes) else str(path)
        try:
            self.session = ort.InferenceSession(path if isinstance(path, bytes) else str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NoSuchFile types
            raise CheckpointError(f"cannot load {name} with onnxruntime: {exc}") from exc
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise CheckpointError(f"{name} carries no landsight metadata; export it with `landsight export`")
        self.metadata: dict[str, Any] = json.loads(raw)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def task(self) -> str:
        """"classification" or "segmentation"."""
        return str(self.metadata["task"])

    @property
    def bands(self) -> BandSpec:
        """The bands the model reads, in order."""
        return BandSpec.from_dict(self.metadata["bands"])

    @property
    def normalization(self) -> Normalization:
        """Training band statistics."""
        return Normalization.from_dict(self.metadata["normalization"])

    @property
    def classes(self) -> list[str]:
        """Class names in output order."""
        return [c["name"] for c in self.metadata["classes"]]

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw outputs for a normalized float32 batch."""
        return np.asarray(self.session.run(None, {self.input_name: batch.astype(np.float32)})[0])

    def probabilities(self, raw: np.ndarray) -> np.ndarray:
        """Class probabilities for raw (N, C, H, W) pixel values of the model's bands (averaged over the four flips
        when the model was trained so, as `Classifier` does)."""
        options = self.metadata.get("options", {})
        x = normalize(raw, str(options.get("normalization_mode", "dataset")), self.normalization)
        views = flip_views(x) if options.get("tta") else [x]
        return np.asarray(np.mean([class_probabilities(self.logits(v), bool(options.get("multi_label")))
                                   for v in views], axis=0))


def class_probabilities(logits: np.ndarray, multi_label: bool = False) -> np.ndarray:
    """float32 probabilities from logits: softmax over axis 1, or per-class sigmoid (`multi_label`)."""
    logits = logits.astype(np.float32, copy=False)
    if multi_label:
        return np.asarray(1 / (1 + np.exp(-logits)), dtype=np.float32)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return np.asarray(shifted / shifted.sum(axis=1, keepdims=True), dtype=np.float32)
