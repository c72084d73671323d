"""Several networks of one architecture, trained from different seeds, that predict as one."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


class Ensemble(nn.Module):
    """Averages its members' class probabilities: softmax over dim 1, or per-class sigmoid (`multi_label`).

    The output is the matching inverse of that average (log, or logit), so everything that applies a softmax or
    sigmoid to a network's output (predict, classify, the pipeline, ONNX export) gets the averaged probabilities.
    """

    def __init__(self, members: Sequence[nn.Module], multi_label: bool = False) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.multi_label = multi_label

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.multi_label:
            probabilities = torch.stack([member(x).sigmoid() for member in self.members]).mean(dim=0)
            return torch.logit(probabilities, eps=1e-7)
        probabilities = torch.stack([member(x).softmax(dim=1) for member in self.members]).mean(dim=0)
        return probabilities.clamp_min(1e-8).log()
