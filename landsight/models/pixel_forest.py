"""The pixel baseline as a torch module: a random forest over per-pixel features, stored as tensors.

A forest fitted by scikit-learn (`landsight.train.baseline`) is copied into buffers (node feature, threshold,
children, leaf class shares), so a MODEL file holds it like any network's weights (no pickle), and the predictor,
the pipeline and the server run it window by window like a U-Net.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

NEIGHBOURHOODS = (3, 9)
"""Sides (px) of the local means added to each band's value: texture and context a single pixel lacks."""

LEAF = -1
"""Child index of a leaf node (scikit-learn's TREE_LEAF)."""


def pixel_features(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) normalized bands -> (N, C * (1 + len(NEIGHBOURHOODS)), H, W): each band, then its local means
    (edges mirrored)."""
    parts = [x]
    for side in NEIGHBOURHOODS:
        pad = side // 2
        padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
        parts.append(F.avg_pool2d(padded, side, stride=1))
    return torch.cat(parts, dim=1)


class PixelForest(nn.Module):
    """Per-pixel class probabilities of a random forest; `forward` returns their logarithm as logits.

    Buffers are (trees, nodes) arrays padded with leaves; they take their shapes from the state dict loaded.
    """

    CHUNK = 65_536
    """Pixels walked down the trees at a time (bounds the (trees, pixels) node arrays)."""

    feature: torch.Tensor
    threshold: torch.Tensor
    left: torch.Tensor
    right: torch.Tensor
    value: torch.Tensor
    depth: torch.Tensor

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.in_channels, self.num_classes = in_channels, num_classes
        self.register_buffer("feature", torch.zeros(1, 1, dtype=torch.int64))
        self.register_buffer("threshold", torch.zeros(1, 1, dtype=torch.float64))  # as scikit-learn compares
        self.register_buffer("left", torch.full((1, 1), LEAF, dtype=torch.int64))
        self.register_buffer("right", torch.full((1, 1), LEAF, dtype=torch.int64))
        self.register_buffer("value", torch.full((1, 1, num_classes), 1.0 / num_classes))
        self.register_buffer("depth", torch.zeros((), dtype=torch.int64))

    def _load_from_state_dict(self, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        for name, buffer in self.named_buffers(recurse=False):
            incoming = state_dict.get(prefix + name)
            if isinstance(incoming, torch.Tensor):
                setattr(self, name, torch.empty_like(buffer).resize_(incoming.shape))
        super()._load_from_state_dict(state_dict, prefix, *args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        features = pixel_features(x.float()).permute(1, 0, 2, 3).reshape(-1, n * h * w)
        probs = torch.cat([self._probabilities(features[:, i:i + self.CHUNK])
                           for i in range(0, features.shape[1], self.CHUNK)], dim=0)
        return probs.clamp_min(1e-6).log().reshape(n, h, w, -1).permute(0, 3, 1, 2)

    def _probabilities(self, features: torch.Tensor) -> torch.Tensor:
        """(F, P) pixel features -> (P, K) class shares averaged over the trees."""
        trees, pixels = self.feature.shape[0], features.shape[1]
        node = torch.zeros(trees, pixels, dtype=torch.int64, device=features.device)
        for _ in range(int(self.depth)):
            left = self.left.gather(1, node)
            values = features.gather(0, self.feature.gather(1, node).clamp_min(0)).double()
            step = torch.where(values <= self.threshold.gather(1, node), left, self.right.gather(1, node))
            node = torch.where(left == LEAF, node, step)
        shares = self.value.gather(1, node.unsqueeze(-1).expand(trees, pixels, self.num_classes))
        return shares.mean(dim=0)
