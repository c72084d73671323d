"""Train one classifier candidate: AdamW with a cosine schedule, flips/transposes, class-weighted loss, validation
macro F1 each epoch, early stopping and a hard time limit; the best epoch's weights are kept."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress, TaskID
from torch import nn
from torch.utils.data import DataLoader, Sampler

from landsight.classify.network import create_classifier
from landsight.data.datasets import ArrayChipDataset
from landsight.imagery.flips import flip_views
from landsight.labels.weights import class_weights
from landsight.learn.fit import FitSettings, fit
from landsight.learn.task import Shard, Task, multi_label_f1
from landsight.metrics import summarize
from landsight.models.onnx_runtime import class_probabilities

log = logging.getLogger(__name__)

_DIVERGED_FIX = "check the chips for extreme values, or leave this backbone out of `backbones`"

CRITERIA = ("macro_f1", "loss")
"""How epochs and candidates are ranked on validation: macro F1 (ties: lower loss), or lower loss (ties: F1). The
loss moves smoothly with every chip; F1 on a few dozen validation chips jumps by whole chips."""


def rank(score: float, loss: float, choose_on: str = "macro_f1") -> tuple[float, float]:
    """Sort key of a validation result under `choose_on`; higher is better."""
    return (score, -loss) if choose_on == "macro_f1" else (-loss, score)


def set_cpu_threads(requested: str | int = "auto") -> int:
    """Set torch's CPU threads: a number, or "auto" = the cores not already busy (1-minute load average), at least 1.

    On a shared machine two threads fighting other processes for two cores can be ten times slower than one.
    """
    if requested != "auto":
        threads = int(requested)
    else:
        cores = os.cpu_count() or 1
        busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
        threads = max(1, min(torch.get_num_threads(), int(cores - busy + 0.5)))
    torch.set_num_threads(max(1, threads))
    log.info("using %d CPU thread(s)", threads)
    return threads


@dataclasses.dataclass(frozen=True)
class Trial:
    """One candidate: a timm backbone, a peak learning rate and its initial weights ("imagenet", a file or None)."""

    backbone: str
    lr: float
    weights: str | None

    def label(self) -> str:
        """Short name for tables and logs."""
        init = "scratch" if not self.weights else ("imagenet" if self.weights == "imagenet" else "file")
        return f"{self.backbone} lr={self.lr:g} ({init})"


@dataclasses.dataclass
class TensorData:
    """Normalized training and validation chips as tensors, with 0/1 targets (N, K)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    multi_label: bool

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        return int(self.y_train.shape[1])


@dataclasses.dataclass
class TrialResult:
    """How a candidate did: best validation macro F1 (and loss), epochs, time, why it stopped, best weights."""

    trial: Trial
    score: float
    val_loss: float
    best_epoch: int
    epochs: int
    seconds: float
    stopped: str
    history: list[dict[str, Any]]
    state_dict: dict[str, torch.Tensor] = dataclasses.field(repr=False)

    def row(self) -> dict[str, Any]:
        """JSON-ready summary for the report."""
        return {"candidate": self.trial.label(), "backbone": self.trial.backbone, "lr": self.trial.lr,
                "weights": self.trial.weights, "val_macro_f1": round(self.score, 4),
                "val_loss": round(self.val_loss, 4), "best_epoch": self.best_epoch, "epochs": self.epochs,
                "seconds": round(self.seconds, 1), "stopped": self.stopped}


def make_loss(data: TensorData) -> nn.Module:
    """Cross-entropy (single-label) or BCE-with-logits (multi-label) weighted by the training counts
    (`landsight.labels.weights.class_weights`)."""
    weights = class_weights(data.y_train.sum(dim=0), data.multi_label, total=len(data.y_train))
    if data.multi_label:
        return nn.BCEWithLogitsLoss(pos_weight=weights)
    return nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)


def loss_value(loss_fn: nn.Module, logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """`loss_fn` (from `make_loss`) of logits against 0/1 targets (N, K)."""
    return loss_fn(logits, targets if multi_label else targets.argmax(dim=1))


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 128) -> torch.Tensor:
    """Raw outputs (N, K) on the CPU for normalized chips, in eval mode."""
    model.eval()
    parts = [model(x[start:start + batch_size].to(device)).float().cpu() for start in range(0, len(x), batch_size)]
    return torch.cat(parts)


def predict_probs(model: nn.Module, x: torch.Tensor, multi_label: bool, device: torch.device,
                  tta: bool = False) -> np.ndarray:
    """Class probabilities for normalized chips; with `tta`, the mean over the four `flip_views`."""
    views = [torch.from_numpy(v) for v in flip_views(x.numpy())] if tta else [x]
    return np.asarray(np.mean([class_probabilities(predict_logits(model, v, device).numpy(), multi_label)
                               for v in views], axis=0))


def _average_batch_norm(model: nn.Module) -> None:
    """Restart batch-norm running statistics as the plain mean over the coming epoch's batches (momentum None).

    Evaluation then sees the statistics of the whole epoch's data: with a momentum they follow the class mix of the
    last few batches (cloudy and clear chips differ a lot), and validation loss jumped between epochs even at a
    learning rate near zero; stale ImageNet statistics are gone after the first epoch.
    """
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None


class _Batches(Sampler[list[int]]):
    """Index batches of `n` chips, in order, or shuffled by the task's generator once per epoch however often the
    loader is iterated (a last batch of one chip is then dropped: batch norm needs two)."""

    def __init__(self, n: int, batch_size: int, shard: Shard, task: ClassificationTask | None = None,
                 epoch: int = 0) -> None:
        self.n, self.batch_size, self.shard, self.task, self.epoch = n, batch_size, shard, task, epoch

    def _all(self) -> list[torch.Tensor]:
        if self.task is None:
            return list(torch.arange(self.n).split(self.batch_size))
        return self.task.epoch_order(self.epoch, self.n, self.batch_size)[0]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(batch.tolist() for batch in self.shard.take(self._all()))

    def __len__(self) -> int:
        full, rest = divmod(self.n, self.batch_size)
        count = full + (rest > 1 if self.task is not None and full else rest > 0)
        return len(range(self.shard.rank, count, self.shard.world))


class ClassificationTask(Task):
    """Chip classes (one per chip, or several for multi-label chips) from in-memory tensors: shuffled batches with
    random orientations (`landsight.data.transforms.orient`), class-weighted loss, batch norm averaged over each
    epoch, validation macro F1 and loss."""

    def __init__(self, data: TensorData, trial: Trial, epochs: int, batch_size: int, seed: int,
                 choose_on: str) -> None:
        self.data = data
        self.num_classes = data.num_classes
        self.multi_label = data.multi_label
        self.peak_lr = trial.lr
        self.diverged_fix = f"candidate {trial.label()}: {_DIVERGED_FIX}"
        self.epochs, self.batch_size, self.choose_on = epochs, batch_size, choose_on
        self.generator = torch.Generator().manual_seed(seed)
        self._order: tuple[int, list[torch.Tensor], torch.Tensor] = (0, [], torch.zeros(0, 3, dtype=torch.bool))
        self.loss_fn = make_loss(data)

    def _loader(self, dataset: ArrayChipDataset, batches: _Batches) -> DataLoader[Any]:
        # its own generator: creating the iterator draws no number from torch's global one (dropout's)
        return DataLoader(dataset, batch_sampler=batches, generator=torch.Generator())

    def train_loader(self, epoch: int, shard: Shard) -> DataLoader[Any]:
        data = self.data
        _, orientations = self.epoch_order(epoch, len(data.x_train), self.batch_size)
        chips = ArrayChipDataset(data.x_train, data.y_train, orientations)
        return self._loader(chips, _Batches(len(data.x_train), self.batch_size, shard, self, epoch))

    def epoch_order(self, epoch: int, n: int, batch_size: int) -> tuple[list[torch.Tensor], torch.Tensor]:
        """The shuffled index batches of `epoch` and each chip's orientation flags (N, 3), drawn from the generator
        the first time they are asked for: the order, then the flags batch by batch."""
        if self._order[0] != epoch or len(self._order[2]) != n:
            batches = list(torch.randperm(n, generator=self.generator).split(batch_size))
            kept = [b for b in batches if len(b) > 1] or batches
            orientations = torch.zeros(n, 3, dtype=torch.bool)
            for batch in kept:
                orientations[batch] = torch.rand(len(batch), 3, generator=self.generator) < 0.5
            self._order = (epoch, kept, orientations)
        return self._order[1], self._order[2]

    def val_loader(self, shard: Shard) -> DataLoader[Any] | None:
        data = self.data
        return self._loader(ArrayChipDataset(data.x_val, data.y_val), _Batches(len(data.x_val), 128, shard))

    def optimizers(self, model: nn.Module, shard: Shard) -> tuple[torch.optim.Optimizer, Any]:
        """AdamW with a one-cycle schedule (15 % warm-up, cosine decay) over every batch of `epochs` epochs."""
        steps = self.epochs * max(1, math.ceil(len(self.data.x_train) / self.batch_size))
        optimizer = torch.optim.AdamW(model.parameters(), lr=self.peak_lr, weight_decay=1e-4)
        return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=self.peak_lr, total_steps=steps + 1,
                                                               pct_start=0.15)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return loss_value(self.loss_fn.to(logits.device), logits, target, self.multi_label)

    def epoch_start(self, model: nn.Module, epoch: int) -> None:
        _average_batch_norm(model)

    def summary(self, confusion: np.ndarray) -> dict[str, Any]:
        if self.multi_label:
            return {"macro_f1": multi_label_f1(confusion)}
        names = [str(k) for k in range(self.num_classes)]
        return {"macro_f1": float(summarize(confusion, names)["mean_f1"] or 0.0)}

    def rank(self, train_loss: float, val_loss: float | None, summary: dict[str, Any] | None) -> tuple[float, ...]:
        assert val_loss is not None and summary is not None
        return rank(summary["macro_f1"], val_loss, self.choose_on)

    def row(self, epoch: int, train_loss: float, val_loss: float | None, summary: dict[str, Any] | None,
            lr: float, elapsed: float) -> dict[str, Any]:
        assert val_loss is not None and summary is not None
        return {"epoch": epoch, "train_loss": round(train_loss, 5), "val_loss": round(val_loss, 5),
                "val_macro_f1": round(summary["macro_f1"], 5), "seconds": round(elapsed, 1)}

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state(), "order_epoch": self._order[0], "order": self._order[1],
                "orientations": self._order[2]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        none = torch.zeros(0, 3, dtype=torch.bool)
        self._order = (int(state["order_epoch"]), list(state["order"]), state.get("orientations", none))


def run_trial(trial: Trial, data: TensorData, seconds: float, epochs: int, patience: int, device: torch.device,
              batch_size: int = 32, seed: int = 0, progress: Progress | None = None,
              task: TaskID | None = None, choose_on: str = "macro_f1", resume_path: Path | None = None) -> TrialResult:
    """Train `trial` for at most `epochs` epochs and `seconds` seconds; keep the best validation epoch (`rank`).

    An epoch is not started when the previous one suggests it would end past the deadline. With `resume_path`, an
    interrupted trial continues from its last epoch.
    """
    started = time.monotonic()
    torch.manual_seed(seed)
    model = create_classifier("classifier", trial.backbone, data.x_train.shape[1], data.num_classes, trial.weights)
    best_f1 = [0.0]

    def advance(row: dict[str, Any]) -> None:
        best_f1[0] = max(best_f1[0], row["val_macro_f1"])
        if progress is not None and task is not None:
            progress.update(task, advance=1, description=f"{trial.label()}: val F1 {best_f1[0]:.3f}")

    settings = FitSettings(epochs, patience, device, budget_s=seconds, resume_path=resume_path,
                           run_key=trial.label(), progress=False)
    result = fit(model, ClassificationTask(data, trial, epochs, batch_size, seed, choose_on), settings, advance)
    history = [{"candidate": trial.label(), **row} for row in result.history]
    assert result.val_loss is not None
    log.info("%s: best val macro F1 %.3f at epoch %d of %d (%s, %.0f s)", trial.label(), result.metrics["macro_f1"],
             result.best_epoch, len(history), result.stopped, time.monotonic() - started)
    return TrialResult(trial, result.metrics["macro_f1"], result.val_loss, result.best_epoch, len(history),
                       time.monotonic() - started, result.stopped, history, result.state_dict)
