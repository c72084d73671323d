"""The MODEL file: one file with weights and everything needed to use them (bands, normalization, classes...)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from landsight import __version__
from landsight.errors import CheckpointError, OutputError
from landsight.imagery.bands import BandSpec, Normalization, checked_normalization
from landsight.labels.classes import ClassTable
from landsight.models.ensemble import Ensemble
from landsight.outputs import atomic_path
from landsight.provenance import file_digest, utc_now
from landsight.torch_utils import load_plain, nonfinite_tensors

FORMAT = "landsight-model"
FORMAT_VERSION = 1

_BUILDERS = {
    "segmentation": "landsight.models.registry:create_model",
    "classification": "landsight.classify.network:create_classifier",
}
"""Task -> factory `(arch, encoder, in_channels, num_classes, weights=None) -> nn.Module`, imported lazily."""

_TRAIN_HINT = "train one with `landsight train` (segmentation) or `landsight classify train` (classification)"


@dataclasses.dataclass
class ModelFile:
    """A trained model and its metadata. `task` is "segmentation" or "classification"; `options` holds task-specific
    settings (classification: multi_label, normalization mode, input statistics, decision threshold...). A model of
    several `members` is an `Ensemble` whose weights are all in `state_dict`."""

    arch: str
    encoder: str
    bands: BandSpec
    normalization: Normalization
    classes: ClassTable
    chip_size: int
    state_dict: dict[str, torch.Tensor]
    task: str = "segmentation"
    training: dict[str, Any] = dataclasses.field(default_factory=dict)
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    landsight_version: str = __version__
    created: str = dataclasses.field(default_factory=utc_now)
    sha256: str = ""
    members: int = 1

    def build(self) -> nn.Module:
        """The model with its trained weights, in eval mode."""
        if self.task not in _BUILDERS:
            raise CheckpointError(f"unknown model task {self.task!r}; this landsight knows {sorted(_BUILDERS)}")
        module, attr = _BUILDERS[self.task].split(":")
        create = getattr(importlib.import_module(module), attr)
        model = create(self.arch, self.encoder, self.bands.count, len(self.classes), weights=None)
        if self.members > 1:
            model = Ensemble([model] + [create(self.arch, self.encoder, self.bands.count, len(self.classes),
                                               weights=None) for _ in range(self.members - 1)],
                             multi_label=bool(self.options.get("multi_label", False)))
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            raise CheckpointError(f"weights do not fit {self.arch}/{self.encoder}: {exc}") from exc
        return model.eval()

    def metadata(self) -> dict[str, Any]:
        """Everything but the weights, as plain JSON-ready values."""
        return {
            "format": FORMAT, "format_version": FORMAT_VERSION, "task": self.task, "arch": self.arch,
            "encoder": self.encoder, "bands": self.bands.to_dict(), "normalization": self.normalization.to_dict(),
            "classes": self.classes.to_list(), "chip_size": self.chip_size, "training": self.training,
            "metrics": self.metrics, "options": self.options, "landsight_version": self.landsight_version,
            "created": self.created, "members": self.members,
        }

    def save(self, path: str | Path, overwrite: bool = False) -> str:
        """Write atomically; return the file's sha256. Non-finite weights or statistics are refused."""
        bad = nonfinite_tensors(self.state_dict)
        if bad:
            raise CheckpointError(f"refusing to write {path}: weights {bad[:3]} hold NaN or Inf (training diverged); "
                                  "lower the learning rate or check the input for extreme values")
        checked_normalization(self.normalization, self.bands.names)
        # Metadata through JSON: the same values always pickle to the same bytes (no shared-object memo differences).
        metadata = json.loads(json.dumps(self.metadata()))
        payload = {**metadata, "state_dict": {k: v.detach().cpu() for k, v in self.state_dict.items()}}
        with atomic_path(path, overwrite) as tmp:
            save_checked(payload, tmp)
            digest = file_digest(tmp)
        self.sha256 = digest
        return digest


def save_checked(payload: dict[str, Any], path: Path) -> None:
    """`torch.save` through a file handle (the archive's inner names do not depend on the file name, so equal
    payloads give equal bytes); a failed write (full disk, file-size limit) raises OutputError naming `path`."""
    try:
        with open(path, "wb") as handle:
            torch.save(payload, handle)
    except RuntimeError as exc:
        raise OutputError(f"cannot write {path}: {exc}; the disk may be full: free space and run again") from exc


def load_model_file(path: str | Path, task: str | None = "segmentation") -> ModelFile:
    """Read a MODEL file; anything that is not a landsight model (of `task`) raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"model file not found: {path}")
    payload = load_plain(path, "landsight model file", _TRAIN_HINT)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a landsight model file (no '{FORMAT}' marker); {_TRAIN_HINT}")
    _check_fields(path, payload)
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} has model format version {payload['format_version']}, written by landsight "
                              f"{payload.get('landsight_version', 'unknown')}; this landsight ({__version__}) reads "
                              f"format versions up to {FORMAT_VERSION}: upgrade landsight")
    if task is not None and payload["task"] != task:
        raise CheckpointError(f"{path} is a {payload['task']} model; this command needs a {task} model")
    model = ModelFile(
        arch=payload["arch"], encoder=payload["encoder"],
        bands=_parse(path, "bands", BandSpec.from_dict, payload["bands"]),
        normalization=_parse(path, "normalization", Normalization.from_dict, payload["normalization"]),
        classes=_parse(path, "classes", ClassTable.from_list, payload["classes"]), chip_size=payload["chip_size"],
        state_dict=payload["state_dict"], task=payload["task"], training=payload.get("training", {}),
        metrics=payload.get("metrics", {}), options=payload.get("options", {}),
        landsight_version=payload.get("landsight_version", "?"),
        created=payload.get("created", ""), sha256=file_digest(path), members=payload.get("members", 1),
    )
    _check_values(path, model)
    return model


_REQUIRED: dict[str, type] = {"task": str, "arch": str, "encoder": str, "bands": dict, "normalization": dict,
                              "classes": list, "chip_size": int, "state_dict": dict}
_OPTIONAL: dict[str, type] = {"format_version": int, "training": dict, "metrics": dict, "options": dict,
                              "landsight_version": str, "created": str, "members": int}


def _damaged(path: Path, problem: str) -> CheckpointError:
    return CheckpointError(f"{path} is a damaged landsight model file: {problem}; {_TRAIN_HINT}")


def _check_fields(path: Path, payload: dict[str, Any]) -> None:
    """Every required field present, and every field of its type (bool is no int here)."""
    for name, kind in {**_REQUIRED, **_OPTIONAL}.items():
        if name not in payload:
            if name in _REQUIRED:
                raise _damaged(path, f"field {name!r} is missing")
            continue
        value = payload[name]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise _damaged(path, f"field {name!r} should be {kind.__name__}, not {type(value).__name__} {value!r:.60}")


def _parse(path: Path, name: str, parse: Any, value: Any) -> Any:
    """`parse(value)` with any failure raised as CheckpointError naming field `name`."""
    try:
        return parse(value)
    except (KeyError, TypeError, ValueError) as exc:
        raise _damaged(path, f"field {name!r} cannot be read ({type(exc).__name__}: {exc})") from exc


def _check_values(path: Path, model: ModelFile) -> None:
    """Sizes that fit together, tensors only and finite numbers (a model with NaN weights predicts nothing)."""
    if model.chip_size < 1 or model.members < 1 or model.bands.count < 1:
        raise _damaged(path, f"chip_size {model.chip_size}, members {model.members} and the number of bands "
                             f"{model.bands.count} must be at least 1")
    norm = model.normalization
    if len(norm.mean) != model.bands.count or len(norm.std) != model.bands.count:
        raise _damaged(path, f"field 'normalization' has {len(norm.mean)} band(s) but field 'bands' "
                             f"{model.bands.count}")
    if not all(math.isfinite(v) for v in (*norm.mean, *norm.std)) or min(norm.std) <= 0:
        raise _damaged(path, f"field 'normalization' holds NaN, Inf or a std <= 0 ({norm.to_dict()})")
    wrong = [k for k, v in model.state_dict.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if wrong:
        raise _damaged(path, f"field 'state_dict' holds non-tensor entries, e.g. {wrong[0]!r}")
    bad = nonfinite_tensors(model.state_dict)
    if bad:
        raise _damaged(path, f"field 'state_dict' holds NaN or Inf weights, e.g. {bad[0]!r}")
