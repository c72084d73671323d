"""Small torch helpers shared by training and prediction."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from landsight.errors import CheckpointError, ConfigError, TrainingError, import_extra


def require_torch() -> Any:
    """Import torch or explain how to install the ML extra."""
    return import_extra("torch", "this command needs PyTorch: pip install 'landsight[ml]' (on this project's "
                                 "machines: pip install torch==2.14.1 torchvision==0.29.1)")


def resolve_device(name: str) -> Any:
    """torch.device for "auto" (CUDA if available), "cpu" or "cuda"; asking for CUDA without one is an error."""
    torch = require_torch()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("`device` cuda was asked for but no CUDA GPU is visible; use `device` cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)


def load_plain(path: str | Path, what: str, fix: str) -> Any:
    """`torch.load` of tensors and plain values only (weights_only: nothing in the file is ever run).

    A foreign, damaged or malicious file raises CheckpointError saying it is not `what`, and `fix`.
    """
    torch = require_torch()
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # RuntimeError, UnpicklingError, EOFError, OSError... depending on what the file holds
        raise CheckpointError(f"{path} is not a {what} ({type(exc).__name__}: damaged, foreign, or holding more than "
                              f"tensors and plain values; nothing in it was run); {fix}") from exc


def nonfinite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in `state` that hold NaN or +/-Inf."""
    torch = require_torch()
    return [name for name, value in state.items()
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all())]


def check_loss(value: float, epoch: int, lr: float, fix: str, what: str = "training loss") -> None:
    """Stop training with TrainingError when `value` is NaN or infinite, naming the epoch, likely causes and `fix`."""
    if not math.isfinite(value):
        raise TrainingError(f"the {what} became {value} in epoch {epoch} (peak learning rate {lr:g}): training "
                            "diverged and stopped, no model was written. Likely causes: a learning rate too high, or "
                            "extreme input values such as an undeclared fill value (declare the image's nodata value "
                            f"or leave the band out with `bands`); {fix}")
