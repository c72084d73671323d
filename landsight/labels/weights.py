"""One class-weight policy for every loss (segmentation pixels, chip classes, multi-label chips). Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WEIGHT_RANGE = (0.1, 10.0)
"""Weights are clipped to this range: one rare class must not dominate the loss."""


def class_weights(counts: Sequence[float] | np.ndarray, multi_label: bool = False,
                  total: float | None = None) -> list[float]:
    """Loss weights from training counts (pixels or chips per class).

    Single-label: the square root of inverse class frequency, scaled to average 1 over the classes present (full
    inverse frequency lets a class seen in one polygon swallow its neighbours). Multi-label: each class's positive
    weight, negatives / positives of `total` samples. Both clipped to `WEIGHT_RANGE`; absent classes get 1.

    >>> class_weights([300, 100])
    [0.732051, 1.267949]
    >>> class_weights([6, 2], multi_label=True, total=8)
    [0.333333, 3.0]
    """
    counts = np.asarray(counts, dtype=np.float64)
    present = counts > 0
    weights = np.ones_like(counts)
    if multi_label:
        if total is None:
            raise ValueError("multi-label weights need the number of samples (`total`)")
        weights[present] = (total - counts[present]) / counts[present]
    elif present.any():
        weights[present] = np.sqrt(counts[present].sum() / counts[present])
        weights[present] /= weights[present].mean()
    return [round(float(w), 6) for w in np.clip(weights, *WEIGHT_RANGE)]
