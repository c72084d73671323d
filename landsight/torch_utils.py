"""Small torch helpers shared by training and prediction."""

from __future__ import annotations

from typing import Any

from landsight.errors import ConfigError, MissingExtraError


def require_torch() -> Any:
    """Import torch or explain how to install the ML extra."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingExtraError("this command needs PyTorch: pip install 'landsight[ml]' "
                                "(on this project's machines: pip install torch==2.14.1 torchvision==0.29.1)") from exc
    return torch


def resolve_device(name: str) -> Any:
    """torch.device for "auto" (CUDA if available), "cpu" or "cuda"; asking for CUDA without one is an error."""
    torch = require_torch()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)
