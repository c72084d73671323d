"""The classifier baseline as a module: logistic regression on each band's chip statistics (mean, standard deviation
and percentiles of the normalized pixels). It sees brightness distributions, not shapes; stored as tensors, so a
classifier MODEL file can hold it instead of a network (see `landsight.classify.baseline`)."""

from __future__ import annotations

import torch
from torch import nn

CHIP_STATISTICS = "chip-statistics"
"""The `arch` of classifier MODEL files holding this baseline; their `encoder` is ignored."""

PERCENTILES = (2, 10, 50, 90, 98)
STATISTICS = 2 + len(PERCENTILES)
"""Features per band: mean, standard deviation, PERCENTILES."""


def chip_features(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, C x STATISTICS) float32: per band its mean, standard deviation and PERCENTILES."""
    flat = images.flatten(2).double()
    quantiles = torch.quantile(flat, torch.tensor(PERCENTILES, dtype=torch.float64) / 100, dim=2)
    stats = torch.stack([flat.mean(dim=2), flat.std(dim=2, unbiased=False), *quantiles], dim=2)
    return stats.reshape(len(images), -1).float()


class ChipStatisticsClassifier(nn.Module):
    """Logits of a linear model on standardized `chip_features`."""

    feature_mean: torch.Tensor
    feature_std: torch.Tensor

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        features = in_channels * STATISTICS
        self.register_buffer("feature_mean", torch.zeros(features))
        self.register_buffer("feature_std", torch.ones(features))
        self.linear = nn.Linear(features, num_classes)

    def standardized(self, images: torch.Tensor) -> torch.Tensor:
        """The linear model's inputs for `images`."""
        return (chip_features(images) - self.feature_mean) / self.feature_std

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.linear(self.standardized(images))

