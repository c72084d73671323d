"""Several networks of one architecture, trained from different seeds, that predict as one."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Ensemble(nn.Module):
    """Averages its members' class probabilities (softmax over dim 1).

    The output is the log of that average, so everything that applies a softmax to a network's output (predict,
    the pipeline, ONNX export) gets the averaged probabilities unchanged.
    """

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probabilities = torch.stack([member(x).softmax(dim=1) for member in self.members]).mean(dim=0)
        return probabilities.clamp_min(1e-8).log()
