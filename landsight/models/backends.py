"""Where a model's forward pass runs: its PyTorch network (a MODEL file) or ONNX Runtime (its `landsight export`).
Both take normalized (N, C, H, W) float32 batches and return float32 logits; `load_backend` picks by the file."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from landsight.errors import CheckpointError, ConfigError
from landsight.hardware import cpu_has_bf16
from landsight.imagery.bands import BandSpec, Normalization
from landsight.labels.classes import ClassTable
from landsight.models.model_file import ModelFile, load_model_file
from landsight.models.onnx_runtime import OnnxModel
from landsight.provenance import file_digest
from landsight.torch_utils import resolve_device


class Backend(Protocol):
    """A forward pass: normalized float32 (N, C, H, W) -> float32 logits ((N, K, H, W) or (N, K))."""

    name: str

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw outputs of the network for `batch`."""
        ...


PRECISIONS = ("auto", "fp32", "bf16")
"""Arithmetic of the PyTorch forward pass: "auto" is bf16 autocast on CUDA and on CPUs with native bf16 (AVX-512
BF16 or AMX, see `landsight.hardware.cpu_has_bf16`), fp32 elsewhere: on an AVX2-only CPU bf16 is emulated and was
15-25x slower than fp32 (AMD EPYC, torch 2.14.1)."""


def resolve_precision(precision: str, device: torch.device) -> str:
    """"fp32" or "bf16" for `precision` on `device` (see `PRECISIONS`)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"`precision` {precision!r}: choose from {list(PRECISIONS)}")
    if precision != "auto":
        return precision
    return "bf16" if device.type == "cuda" or cpu_has_bf16() else "fp32"


class TorchBackend:
    """A MODEL file's network on a device: channels-last on the CPU, bf16 autocast where `resolve_precision` says."""

    name = "torch"

    def __init__(self, model_file: ModelFile, device: str = "auto", precision: str = "auto") -> None:
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model: nn.Module = model_file.build().to(self.device)
        if self.device.type == "cpu":
            self.model = self.model.to(memory_format=torch.channels_last)

    @torch.inference_mode()
    def logits(self, batch: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(batch)).to(self.device)
        if self.device.type == "cpu" and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"):
            out = self.model(x)
        return out.float().cpu().numpy()


class OnnxBackend:
    """An exported model run by ONNX Runtime on the CPU."""

    name = "onnx"

    def __init__(self, runtime: OnnxModel) -> None:
        self.runtime = runtime

    def logits(self, batch: np.ndarray) -> np.ndarray:
        return self.runtime.logits(batch).astype(np.float32, copy=False)


def is_onnx(path: str | Path) -> bool:
    """Whether `path` names an ONNX export rather than a MODEL file."""
    return Path(path).suffix.lower() == ".onnx"


def load_backend(path: str | Path, device: str = "auto", task: str | None = None,
                 precision: str = "auto") -> tuple[ModelFile, Backend]:
    """The model's metadata and its forward pass: a `.onnx` export runs on ONNX Runtime, a MODEL file on PyTorch
    (on `device`, in `precision`). `task` ("segmentation" / "classification"), when given, must match."""
    if not is_onnx(path):
        model_file = load_model_file(path, task=task)
        backend = TorchBackend(model_file, device, precision)
        model_file.state_dict = {}  # the network holds its own copy of the weights
        return model_file, backend
    runtime = _open_onnx(path)
    _check_task(runtime, path, task)
    return _model_file(runtime, path), OnnxBackend(runtime)


def model_metadata(path: str | Path, task: str | None = None) -> ModelFile:
    """What a MODEL file or an ONNX export says of its bands, classes and normalization (`task`, when given, must
    match)."""
    if not is_onnx(path):
        return load_model_file(path, task=task)
    runtime = _open_onnx(path)
    _check_task(runtime, path, task)
    return _model_file(runtime, path)


def _check_task(runtime: OnnxModel, path: str | Path, task: str | None) -> None:
    if task is not None and runtime.task != task:
        raise CheckpointError(f"{path} is a {runtime.task} model; this command needs a {task} model")


def _open_onnx(path: str | Path) -> OnnxModel:
    if not Path(path).is_file():
        raise CheckpointError(f"ONNX model not found: {path}; make one with `landsight export MODEL -o FILE.onnx`")
    return OnnxModel(path)


def _model_file(runtime: OnnxModel, path: str | Path) -> ModelFile:
    """The metadata an export carries, as a weightless ModelFile (its sha256 is the ONNX file's)."""
    meta = runtime.metadata
    try:
        return ModelFile(
            arch=meta["arch"], encoder=meta["encoder"], bands=BandSpec.from_dict(meta["bands"]),
            normalization=Normalization.from_dict(meta["normalization"]),
            classes=ClassTable.from_list(meta["classes"]), chip_size=int(meta["chip_size"]), state_dict={},
            task=runtime.task, options=meta.get("options", {}), members=int(meta.get("members", 1)),
            landsight_version=meta.get("landsight_version", "?"), created=meta.get("created", ""),
            sha256=file_digest(path))
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} carries damaged landsight metadata ({type(exc).__name__}: {exc}); export "
                              "it again with `landsight export`") from exc
