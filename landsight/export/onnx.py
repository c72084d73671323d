"""MODEL file -> ONNX (optionally int8), with the MODEL metadata in the ONNX metadata; checked against PyTorch
(max abs difference) and timed against it on the CPU in the same run."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landsight.errors import CheckpointError, MissingExtraError
from landsight.models.chip_statistics import CHIP_STATISTICS
from landsight.models.model_file import ModelFile, load_model_file
from landsight.models.onnx_runtime import METADATA_KEY, OnnxModel
from landsight.models.registry import PIXEL_FOREST
from landsight.outputs import atomic_path, check_output

log = logging.getLogger(__name__)

TOLERANCE = {"fp32": 1e-3}
"""Largest accepted |onnxruntime - PyTorch| on logits for float32 exports (int8 is reported, not bounded)."""


@dataclasses.dataclass
class ExportResult:
    """What was written and how it compares with PyTorch."""

    path: str
    task: str
    int8: bool
    onnx_bytes: int
    model_bytes: int
    max_abs_diff: float
    argmax_agreement: float
    tolerance: float | None
    batch: tuple[int, ...]
    torch_chips_per_s: float
    ort_chips_per_s: float
    threads: int

    @property
    def within_tolerance(self) -> bool:
        """True when no tolerance applies or the difference is below it."""
        return self.tolerance is None or self.max_abs_diff <= self.tolerance


def _require_onnx() -> Any:
    try:
        import onnx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("ONNX export needs onnx and onnxruntime: pip install 'landsight[export]'") from exc
    return onnx


def onnx_metadata(model_file: ModelFile) -> dict[str, Any]:
    """What travels with the ONNX file: task, bands, normalization, classes, chip size, options, provenance."""
    meta = model_file.metadata()
    keep = ("task", "arch", "encoder", "bands", "normalization", "classes", "chip_size", "options",
            "landsight_version", "created")
    return {**{k: meta[k] for k in keep}, "source_model_sha256": model_file.sha256, "input": "normalized NCHW float32",
            "output": "logits"}


def _export_fp32(module: torch.nn.Module, model_file: ModelFile, path: Path | io.BytesIO, opset: int) -> None:
    size = model_file.chip_size
    dummy = torch.zeros(1, model_file.bands.count, size, size, device=next(module.parameters()).device)
    axes = {0: "batch"} if model_file.task == "classification" else {0: "batch", 2: "height", 3: "width"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter (dynamo=False) writes to a file object too; the annotation names paths only.
        torch.onnx.export(module, (dummy,), path if isinstance(path, io.BytesIO) else str(path),  # type: ignore[arg-type]
                          dynamo=False,
                          input_names=["image"], output_names=["logits"],
                          dynamic_axes={"image": axes, "logits": axes}, opset_version=opset)


def _set_metadata(proto: Any, metadata: dict[str, Any]) -> None:
    onnx = _require_onnx()
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(metadata)
    proto.doc_string = f"landsight {metadata['task']} model {metadata['encoder']} ({metadata['arch']})"
    onnx.checker.check_model(proto)


def _add_metadata(path: Path, metadata: dict[str, Any]) -> None:
    onnx = _require_onnx()
    proto = onnx.load(str(path))
    _set_metadata(proto, metadata)
    onnx.save(proto, str(path))


def export_in_memory(module: torch.nn.Module, model_file: ModelFile, opset: int = 17) -> bytes:
    """The fp32 ONNX export of `module` (the network of `model_file`) with its metadata, as bytes: for running a
    MODEL file on ONNX Runtime without writing a file (see `landsight.predict.predictor.Predictor.on_onnx_runtime`).
    """
    onnx = _require_onnx()
    buffer = io.BytesIO()
    _export_fp32(module, model_file, buffer, opset)
    proto = onnx.load_from_string(buffer.getvalue())
    _set_metadata(proto, {**onnx_metadata(model_file), "int8": False})
    return bytes(proto.SerializeToString())


def _quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    logging.disable(logging.WARNING)  # onnxruntime.quantization logs every tensor through the root logger
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8)
    finally:
        logging.disable(logging.NOTSET)


def _rate(fn: Any, batch: np.ndarray, seconds: float) -> float:
    """Chips per second of `fn(batch)` over at least `seconds` (and 2 calls)."""
    calls, start = 0, time.perf_counter()
    while calls < 2 or time.perf_counter() - start < seconds:
        fn(batch)
        calls += 1
    return calls * len(batch) / (time.perf_counter() - start)


def compare(module: torch.nn.Module, onnx_model: OnnxModel, batch: np.ndarray) -> tuple[float, float]:
    """(max |ORT - PyTorch| of logits, share of pixels/chips whose argmax agrees) on `batch`."""
    with torch.inference_mode():
        expected = module(torch.from_numpy(batch)).float().numpy()
    got = onnx_model.logits(batch)
    return float(np.abs(got - expected).max()), float((got.argmax(axis=1) == expected.argmax(axis=1)).mean())


def benchmark(module: torch.nn.Module, onnx_model: OnnxModel, batch: np.ndarray,
              seconds: float = 2.0, rounds: int = 3) -> tuple[float, float]:
    """CPU chips/s of PyTorch and of onnxruntime on the same batch: after a warm-up call each, `rounds` alternating
    timings of `seconds` in all per runtime; the best round of each counts (load from other processes only slows)."""
    def run_torch(x: np.ndarray) -> Any:
        with torch.inference_mode():
            return module(torch.from_numpy(x))

    run_torch(batch)
    onnx_model.logits(batch)
    rates = [(_rate(run_torch, batch, seconds / rounds), _rate(onnx_model.logits, batch, seconds / rounds))
             for _ in range(rounds)]
    return max(r[0] for r in rates), max(r[1] for r in rates)


def export_onnx(model: str | Path, output: str | Path, int8: bool = False, batch_size: int = 16,
                overwrite: bool = False, opset: int = 17, seed: int = 0, bench_seconds: float = 2.0) -> ExportResult:
    """Export a classification or segmentation MODEL file to ONNX; verify and time it against PyTorch on CPU."""
    check_output(output, overwrite)
    model_file = load_model_file(model, task=None)
    if model_file.arch == CHIP_STATISTICS:
        raise CheckpointError(f"{model} holds the chip-statistics baseline (a logistic regression on band "
                              "percentiles), which runs on PyTorch only; export a network trained with `model` "
                              "network")
    if model_file.arch == PIXEL_FOREST:
        raise CheckpointError(f"{model} holds the pixel baseline (a random forest), which runs on PyTorch only: its "
                              "tree walk rounds differently in ONNX Runtime; export a network trained with "
                              "`landsight train ... --model network`")
    module = model_file.build().eval()
    with atomic_path(output, overwrite) as tmp:
        fp32 = tmp.with_name(tmp.name + ".fp32.onnx") if int8 else tmp
        try:
            _export_fp32(module, model_file, fp32, opset)
            if int8:
                _quantize(fp32, tmp)
        finally:
            if int8:
                fp32.unlink(missing_ok=True)
        _add_metadata(tmp, {**onnx_metadata(model_file), "int8": int8})
        onnx_model = OnnxModel(tmp, threads=torch.get_num_threads())
        size = model_file.chip_size
        n = batch_size if model_file.task == "classification" else max(1, batch_size // 8)
        batch = np.random.default_rng(seed).standard_normal((n, model_file.bands.count, size, size),
                                                             dtype=np.float32)
        diff, agreement = compare(module, onnx_model, batch)
        torch_rate, ort_rate = benchmark(module, onnx_model, batch, bench_seconds)
        onnx_bytes = tmp.stat().st_size
    return ExportResult(str(output), model_file.task, int8, onnx_bytes, Path(model).stat().st_size, diff, agreement,
                        None if int8 else TOLERANCE["fp32"], batch.shape, torch_rate, ort_rate,
                        torch.get_num_threads())
