"""What differs between learning problems: their data, loss, validation scores, ranking and history rows."""

from __future__ import annotations

import abc
import dataclasses
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader


@dataclasses.dataclass(frozen=True)
class Shard:
    """This process's share of the data when training on several devices: every `world`-th item from `rank`."""

    rank: int = 0
    world: int = 1

    def take(self, items: list[Any]) -> list[Any]:
        """The items of this process."""
        return items[self.rank::self.world]

    def batch_size(self, total: int) -> int:
        """Per-process batch size so that all processes together step on `total` items."""
        return -(-total // self.world)


class Task(abc.ABC):
    """A learning problem for `landsight.learn.fit.fit`.

    Subclasses give the data (per epoch, per process, as batches of `landsight.data.datasets` samples: {"image",
    "target"}), the optimizer and per-step schedule, the loss, and how a
    validation confusion matrix becomes a summary, a rank (higher is better) and a history row.
    """

    num_classes: int
    multi_label: bool = False
    diverged_fix: str = "lower the learning rate and start over"
    peak_lr: float = 1e-3

    @abc.abstractmethod
    def train_loader(self, epoch: int, shard: Shard) -> DataLoader[Any]:
        """Batches of epoch `epoch` (1-based) for this process."""

    def val_loader(self, shard: Shard) -> DataLoader[Any] | None:
        """Validation batches of this process (None: no validation)."""
        return None

    @abc.abstractmethod
    def optimizers(self, model: nn.Module, shard: Shard) -> tuple[torch.optim.Optimizer, Any]:
        """Optimizer and its learning-rate scheduler, stepped after every batch of this process."""

    @abc.abstractmethod
    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Scalar loss of float32 logits against the target."""

    def decisions(self, logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(predicted, truth) as the validation confusion matrix takes them: class indices (IGNORE_VALUE in truth
        is skipped), or for multi-label tasks probabilities and 0/1 targets."""
        if self.multi_label:
            return torch.sigmoid(logits), target.long()
        return logits.argmax(dim=1), (target.argmax(dim=1) if target.dim() == logits.dim() else target)

    def epoch_start(self, model: nn.Module, epoch: int) -> None:  # noqa: B027 - optional hook
        """Called before epoch `epoch` trains (e.g. to reset statistics)."""

    @abc.abstractmethod
    def summary(self, confusion: np.ndarray) -> dict[str, Any]:
        """Validation metrics from the confusion matrix (single-label) or per-class 2x2 matrices (multi-label)."""

    @abc.abstractmethod
    def rank(self, train_loss: float, val_loss: float | None, summary: dict[str, Any] | None) -> tuple[float, ...]:
        """Sort key of an epoch (val_loss and summary are None without validation); the highest is kept."""

    @abc.abstractmethod
    def row(self, epoch: int, train_loss: float, val_loss: float | None, summary: dict[str, Any] | None,
            lr: float, elapsed: float) -> dict[str, Any]:
        """The history row of an epoch (what the metrics CSV and curves show)."""

    def state_dict(self) -> dict[str, Any]:
        """Random state to carry across a resume (tensors and plain values)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Inverse of `state_dict`."""


def multi_label_f1(confusion: np.ndarray) -> float:
    """Mean F1 over the labels present in truth or prediction, from (K, 2, 2) matrices [[tn, fp], [fn, tp]]."""
    tp, fp, fn = confusion[:, 1, 1], confusion[:, 0, 1], confusion[:, 1, 0]
    present = (tp + fp + fn) > 0
    if not present.any():
        return 0.0
    return float(np.mean(2 * tp[present] / (2 * tp[present] + fp[present] + fn[present])))
