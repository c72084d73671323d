"""One class-weight policy for every loss (segmentation pixels, chip classes, multi-label chips).

Written with operators that numpy arrays and torch tensors share, so a loss gets its weights computed by torch
(bit for bit as it computes them) and `dataset check` by numpy, from one formula; nothing here imports torch.
"""

from __future__ import annotations

from typing import Any

WEIGHT_RANGE = (0.1, 10.0)
"""Weights are clipped to this range: one rare class must not dominate the loss."""


def class_weights(counts: Any, multi_label: bool = False, total: float | None = None) -> Any:
    """Loss weights from a float array (numpy or torch) of training counts per class (pixels or chips): the same
    kind of array back.

    Single-label: the square root of balanced weights, total / (classes x count), total defaulting to the sum of
    counts (full balancing lets a class seen in one polygon swallow its neighbours). Multi-label: each class's
    positive weight, negatives / positives of `total` samples. Both clipped to `WEIGHT_RANGE`; absent classes get 1.

    >>> import numpy as np
    >>> class_weights(np.array([300.0, 100.0])).round(4).tolist()
    [0.8165, 1.4142]
    >>> class_weights(np.array([6.0, 2.0, 0.0]), multi_label=True, total=8).round(4).tolist()
    [0.3333, 3.0, 1.0]
    """
    safe = counts.clip(min=1)
    present = counts.clip(min=0, max=1)  # counts are whole numbers: 1 where a class occurs, else 0
    if multi_label:
        if total is None:
            raise ValueError("multi-label weights need the number of samples (`total`)")
        weights = (total - counts) / safe
    else:
        n = float(counts.sum()) if total is None else float(total)
        weights = (n / (counts.shape[0] * safe)) ** 0.5
    return (weights * present + (1 - present)).clip(*WEIGHT_RANGE)
