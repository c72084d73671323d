"""A reference model for the report: logistic regression on per-band chip statistics.

It sees only each band's brightness distribution, not shapes or texture. When it scores as well as the network on
the test split, the network has learned little that brightness alone does not give (the report says so).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from landsight.classify.chips import ChipSet
from landsight.classify.fit import TensorData, loss_value, make_loss
from landsight.classify.split import ChipSplit
from landsight.models.onnx_runtime import class_probabilities

DESCRIPTION = ("logistic regression on per-band chip statistics (mean, standard deviation, 2nd/10th/50th/90th/98th "
               "percentiles), fit on the training chips with the network's class weights")
PERCENTILES = (2, 10, 50, 90, 98)
PENALTIES = (1e-3, 1e-2, 1e-1)
"""L2 penalties tried; the one with the lowest validation loss is kept."""


def band_statistics(images: np.ndarray) -> np.ndarray:
    """(N, C * 7) per chip and band: mean, standard deviation and PERCENTILES of the valid (non-NaN) pixels."""
    flat = images.reshape(len(images), images.shape[1], -1).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-nodata band gives NaN, replaced below
        stats = [np.nanmean(flat, axis=2), np.nanstd(flat, axis=2), *np.nanpercentile(flat, PERCENTILES, axis=2)]
    return np.nan_to_num(np.stack(stats, axis=2).reshape(len(images), -1))


def _fit(data: TensorData, loss_fn: torch.nn.Module, penalty: float) -> torch.nn.Linear:
    """L2-penalised fit from zero weights (the problem is convex: no random start, nothing to seed)."""
    linear = torch.nn.Linear(data.x_train.shape[1], data.num_classes)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (loss_value(loss_fn, linear(data.x_train), data.y_train, data.multi_label)
                + penalty * linear.weight.pow(2).sum())
        loss.backward()
        return loss

    optimizer.step(closure)
    return linear


def baseline_probs(chips: ChipSet, split: ChipSplit) -> tuple[np.ndarray, dict[str, Any]]:
    """Test-split probabilities of the baseline, and how it was fit (penalty chosen on validation loss)."""
    features = band_statistics(chips.images)
    mean, std = features[split.train].mean(axis=0), features[split.train].std(axis=0) + 1e-9
    x = {s: torch.from_numpy(((features[getattr(split, s)] - mean) / std).astype(np.float32))
         for s in ("train", "val", "test")}
    y = {s: torch.from_numpy(chips.targets[getattr(split, s)]) for s in ("train", "val")}
    data = TensorData(x["train"], y["train"], x["val"], y["val"], chips.multi_label)
    loss_fn = make_loss(data)
    fits = []
    with torch.enable_grad():
        for penalty in PENALTIES:
            linear = _fit(data, loss_fn, penalty)
            with torch.no_grad():
                val_loss = float(loss_value(loss_fn, linear(x["val"]), y["val"], chips.multi_label))
            fits.append((val_loss, penalty, linear))
    val_loss, penalty, linear = min(fits, key=lambda fit: fit[0])
    with torch.no_grad():
        probs = class_probabilities(linear(x["test"]).numpy(), chips.multi_label)
    return probs, {"model": DESCRIPTION, "penalty": penalty, "val_loss": round(val_loss, 4)}
