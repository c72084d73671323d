"""The classifier baseline: logistic regression on per-band chip statistics (`ChipStatisticsClassifier`).

It sees only each band's brightness distribution, not shapes or texture. It is fitted on the same normalized
training chips as the network and scored on the same validation and test chips; `classify train` keeps it instead of
the network when it scores higher on validation (the report says which was kept and why).
"""

from __future__ import annotations

from typing import Any

import torch

from landsight.classify.fit import TensorData, loss_value, make_loss
from landsight.models.chip_statistics import PERCENTILES, ChipStatisticsClassifier, chip_features

DESCRIPTION = (f"logistic regression on per-band chip statistics (mean, standard deviation, "
               f"{'/'.join(map(str, PERCENTILES))}th percentiles), fit on the training chips with the network's "
               "class weights")
PENALTIES = (1e-3, 1e-2, 1e-1)
"""L2 penalties tried; the one with the lowest validation loss is kept."""


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


def fit_baseline(x_train: torch.Tensor, y_train: torch.Tensor, x_val: torch.Tensor, y_val: torch.Tensor,
                 multi_label: bool) -> tuple[ChipStatisticsClassifier, dict[str, Any]]:
    """The baseline fitted on normalized training chips (penalty chosen on validation loss), and how it was fit.
    Deterministic: the problem is convex and starts from zero weights."""
    model = ChipStatisticsClassifier(x_train.shape[1], y_train.shape[1])
    features = chip_features(x_train)
    model.feature_mean.copy_(features.mean(dim=0))
    model.feature_std.copy_(features.std(dim=0, unbiased=False) + 1e-9)
    with torch.no_grad():
        data = TensorData(model.standardized(x_train), y_train, model.standardized(x_val), y_val, multi_label)
    loss_fn = make_loss(data)
    fits = []
    with torch.enable_grad():
        for penalty in PENALTIES:
            linear = _fit(data, loss_fn, penalty)
            with torch.no_grad():
                val_loss = float(loss_value(loss_fn, linear(data.x_val), y_val, multi_label))
            fits.append((val_loss, penalty, linear))
    val_loss, penalty, linear = min(fits, key=lambda fit: fit[0])
    model.linear.load_state_dict(linear.state_dict())
    return model.eval(), {"model": DESCRIPTION, "penalty": penalty, "val_loss": round(val_loss, 4)}
