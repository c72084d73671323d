"""Flipped views of chip batches for test-time augmentation. Pure numpy.

Shared by the classifiers (`landsight.classify`) and their ONNX runtime (`landsight.export`)."""

from __future__ import annotations

import numpy as np


def flip_views(batch: np.ndarray) -> list[np.ndarray]:
    """Test-time augmentation views of an (N, C, H, W) batch: as is, flipped left-right, flipped up-down and
    transposed (overhead imagery has no "up"; averaging the four lowers the variance of chip decisions)."""
    return [batch, np.ascontiguousarray(batch[..., ::-1]), np.ascontiguousarray(batch[..., ::-1, :]),
            np.ascontiguousarray(np.swapaxes(batch, -1, -2))]
