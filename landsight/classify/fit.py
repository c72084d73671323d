"""Train one classifier candidate: AdamW with a cosine schedule, flips/rotations, class-weighted loss, validation
macro F1 each epoch, early stopping and a hard time limit; the best epoch's weights are kept."""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import os
import time
from typing import Any

import numpy as np
import torch
from rich.progress import Progress, TaskID
from torch import nn

from landsight.classify.chips import flip_views
from landsight.classify.evaluate import macro_f1
from landsight.classify.network import create_classifier
from landsight.torch_utils import check_loss

log = logging.getLogger(__name__)

_DIVERGED_FIX = "check the chips for extreme values, or leave this backbone out with --backbones"

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


def class_weights(targets: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """Imbalance weights from training targets: the square root of balanced class weights (single-label; full
    balancing makes a class seen in one polygon swallow its neighbours) or positive weights negatives/positives
    (multi-label), clipped to [0.1, 10]; classes absent from training get 1."""
    n = float(len(targets))
    positives = targets.sum(dim=0)
    if multi_label:
        weights = (n - positives) / positives.clamp(min=1)
    else:
        weights = (n / (targets.shape[1] * positives.clamp(min=1))).sqrt()
    weights = torch.where(positives > 0, weights, torch.ones_like(weights))
    return weights.clamp(0.1, 10.0)


def make_loss(data: TensorData) -> nn.Module:
    """Weighted cross-entropy (single-label) or BCE-with-logits with positive weights (multi-label)."""
    weights = class_weights(data.y_train, data.multi_label)
    if data.multi_label:
        return nn.BCEWithLogitsLoss(pos_weight=weights)
    return nn.CrossEntropyLoss(weight=weights, label_smoothing=0.05)


def loss_value(loss_fn: nn.Module, logits: torch.Tensor, targets: torch.Tensor, multi_label: bool) -> torch.Tensor:
    """`loss_fn` (from `make_loss`) of logits against 0/1 targets (N, K)."""
    return loss_fn(logits, targets if multi_label else targets.argmax(dim=1))


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal/vertical flips and 90-degree rotations per chip (overhead imagery has no "up")."""
    flips = torch.rand(len(batch), 3, generator=generator) < 0.5
    out = []
    for chip, (h, v, r) in zip(batch, flips.tolist(), strict=True):
        chip = chip.flip(-1) if h else chip
        chip = chip.flip(-2) if v else chip
        out.append(chip.transpose(-1, -2) if r else chip)
    return torch.stack(out)


@torch.inference_mode()
def predict_logits(model: nn.Module, x: torch.Tensor, device: torch.device, batch_size: int = 128) -> torch.Tensor:
    """Raw outputs (N, K) on the CPU for normalized chips, in eval mode."""
    model.eval()
    parts = [model(x[start:start + batch_size].to(device)).float().cpu() for start in range(0, len(x), batch_size)]
    return torch.cat(parts)


def to_probs(logits: torch.Tensor, multi_label: bool) -> np.ndarray:
    """Softmax probabilities, or per-class sigmoid for multi-label models."""
    return (torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=1)).numpy()


def predict_probs(model: nn.Module, x: torch.Tensor, multi_label: bool, device: torch.device,
                  tta: bool = False) -> np.ndarray:
    """Class probabilities for normalized chips; with `tta`, the mean over the four `flip_views`."""
    views = [torch.from_numpy(v) for v in flip_views(x.numpy())] if tta else [x]
    return np.asarray(np.mean([to_probs(predict_logits(model, v, device), multi_label) for v in views], axis=0))


@torch.inference_mode()
def _validate(model: nn.Module, data: TensorData, loss_fn: nn.Module, device: torch.device) -> tuple[float, float]:
    logits = predict_logits(model, data.x_val, device)
    loss = float(loss_value(loss_fn, logits.to(device), data.y_val.to(device), data.multi_label))
    return macro_f1(to_probs(logits, data.multi_label), data.y_val.numpy(), data.multi_label), loss


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


def _batches(n: int, batch_size: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Shuffled index batches; a last batch of one chip is dropped (batch norm needs two)."""
    order = torch.randperm(n, generator=generator)
    batches = list(order.split(batch_size))
    return [b for b in batches if len(b) > 1] or batches


def _train_epoch(model: nn.Module, data: TensorData, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: Any, device: torch.device, batch_size: int, generator: torch.Generator,
                 deadline: float) -> float:
    model.train()
    _average_batch_norm(model)
    total, count = 0.0, 0
    for index in _batches(len(data.x_train), batch_size, generator):
        if time.monotonic() > deadline and count:
            break
        x = augment(data.x_train[index], generator).to(device)
        y = data.y_train[index].to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_value(loss_fn, model(x).float(), y, data.multi_label)
        value = float(loss.detach())
        if not math.isfinite(value):
            return value  # run_trial stops; no optimizer step with it
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += value * len(index)
        count += len(index)
    return total / max(count, 1)


@dataclasses.dataclass
class _Best:
    """The best epoch so far under `choose_on` (see `rank`)."""

    choose_on: str = "macro_f1"
    score: float = -1.0
    loss: float = math.inf
    epoch: int = 0
    state: dict[str, torch.Tensor] | None = None

    def update(self, score: float, loss: float, epoch: int, model: nn.Module) -> None:
        if rank(score, loss, self.choose_on) > rank(self.score, self.loss, self.choose_on):
            self.score, self.loss, self.epoch = score, loss, epoch
            self.state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})


def _optimizer(model: nn.Module, lr: float, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW with a one-cycle schedule (15 % warm-up, cosine decay) over `steps` batches."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps + 1,
                                                           pct_start=0.15)


def run_trial(trial: Trial, data: TensorData, seconds: float, epochs: int, patience: int, device: torch.device,
              batch_size: int = 32, seed: int = 0, progress: Progress | None = None,
              task: TaskID | None = None, choose_on: str = "macro_f1") -> TrialResult:
    """Train `trial` for at most `epochs` epochs and `seconds` seconds; keep the best validation epoch (`rank`).

    An epoch is not started when the previous one suggests it would end past the deadline.
    """
    started = time.monotonic()
    deadline = started + seconds
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = create_classifier("classifier", trial.backbone, data.x_train.shape[1], data.num_classes,
                              trial.weights).to(device)
    loss_fn = make_loss(data).to(device)
    optimizer, scheduler = _optimizer(model, trial.lr, epochs * max(1, math.ceil(len(data.x_train) / batch_size)))
    best, history, stopped, last = _Best(choose_on), [], "max epochs", 0.0
    for epoch in range(1, epochs + 1):
        if epoch > 1 and time.monotonic() + last > deadline:
            stopped = "time limit"
            break
        epoch_start = time.monotonic()
        train_loss = _train_epoch(model, data, loss_fn, optimizer, scheduler, device, batch_size, generator,
                                  deadline)
        check_loss(train_loss, epoch, trial.lr, f"candidate {trial.label()}: {_DIVERGED_FIX}")
        score, val_loss = _validate(model, data, loss_fn, device)
        check_loss(val_loss, epoch, trial.lr, f"candidate {trial.label()}: {_DIVERGED_FIX}", "validation loss")
        history.append({"candidate": trial.label(), "epoch": epoch, "train_loss": round(train_loss, 5),
                        "val_loss": round(val_loss, 5), "val_macro_f1": round(score, 5),
                        "seconds": round(time.monotonic() - started, 1)})
        best.update(score, val_loss, epoch, model)
        if progress is not None and task is not None:
            progress.update(task, advance=1, description=f"{trial.label()}: val F1 {best.score:.3f}")
        last = time.monotonic() - epoch_start
        if epoch - best.epoch >= patience or time.monotonic() > deadline:
            stopped = "early stop" if epoch - best.epoch >= patience else "time limit"
            break
    log.info("%s: best val macro F1 %.3f at epoch %d of %d (%s, %.0f s)", trial.label(), best.score, best.epoch,
             len(history), stopped, time.monotonic() - started)
    assert best.state is not None
    return TrialResult(trial, best.score, best.loss, best.epoch, len(history), time.monotonic() - started, stopped,
                       history, best.state)
