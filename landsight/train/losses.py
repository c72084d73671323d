"""Segmentation losses looked up by name; all ignore IGNORE_VALUE pixels."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from segmentation_models_pytorch.losses import DiceLoss, LovaszLoss
from torch import nn

from landsight.errors import ConfigError
from landsight.labels.classes import IGNORE_VALUE


class SumLoss(nn.Module):
    """Sum of several losses on the same (logits, target)."""

    def __init__(self, *losses: nn.Module) -> None:
        super().__init__()
        self.losses = nn.ModuleList(losses)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return sum((loss(logits, target) for loss in self.losses), torch.zeros((), device=logits.device))


def create_loss(name: str, num_classes: int, class_weights: Sequence[float] | None = None) -> nn.Module:
    """"ce", "dice" (soft dice), "lovasz", or a sum such as "ce+dice"; class weights apply to cross-entropy."""
    if class_weights is not None and len(class_weights) != num_classes:  # ("auto" is resolved by the caller)
        raise ConfigError(f"{len(class_weights)} class weights given for {num_classes} classes; give one per class")
    weight = torch.tensor(class_weights, dtype=torch.float32) if class_weights else None
    makers = {
        "ce": lambda: nn.CrossEntropyLoss(weight=weight, ignore_index=IGNORE_VALUE),
        "dice": lambda: DiceLoss("multiclass", ignore_index=IGNORE_VALUE),
        "lovasz": lambda: LovaszLoss("multiclass", ignore_index=IGNORE_VALUE),
    }
    parts = name.split("+")
    unknown = [p for p in parts if p not in makers]
    if unknown:
        raise ConfigError(f"unknown loss {unknown[0]!r}; choose from {sorted(makers)} or sums like ce+dice")
    losses = [makers[p]() for p in parts]
    return losses[0] if len(losses) == 1 else SumLoss(*losses)
