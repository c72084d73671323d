"""The shared training policies as Lightning callbacks: keep the best epoch, stop early or at the time budget, write
the metrics CSV and curves, save the resume state; and a progress bar."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from rich.progress import Progress, TaskID

from landsight.learn.history import plot_curves, write_csv
from landsight.learn.module import TaskModule

log = logging.getLogger(__name__)


class EpochPolicy(pl.Callback):
    """After each epoch, in this order: its history row, the best weights so far (by `Task.rank`), early stopping
    after `patience` epochs without a better rank, the time budget, the metrics files, the resume state. A run killed
    between two of these redoes the epoch.

    The budget stops before an epoch that the last one's duration says would end past `budget_s`, and within an
    epoch (after its validation) once `budget_s` is spent.
    """

    def __init__(self, patience: int, budget_s: float | None, resume_path: Path | None,
                 history_prefix: Path | None, title: str, on_epoch: Callable[[dict[str, Any]], None] | None) -> None:
        self.patience = patience
        self.budget_s = budget_s
        self.resume_path = resume_path
        self.history_prefix = history_prefix
        self.title = title
        self.on_epoch = on_epoch
        self.history: list[dict[str, Any]] = []
        self.best_rank: list[float] | None = None
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.best_summary: dict[str, Any] = {}
        self.best_val_loss: float | None = None
        self.elapsed = 0.0
        self.stopped = "max epochs"
        self._started = 0.0
        self._epoch_started = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history, "best_rank": self.best_rank, "best_epoch": self.best_epoch,
                "best_state": self.best_state, "best_summary": self.best_summary, "best_val_loss": self.best_val_loss,
                "elapsed": self.elapsed, "stopped": self.stopped, "rng": torch.get_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any], restore_rng: bool = True) -> None:
        self.history = list(state_dict["history"])
        self.best_rank = state_dict["best_rank"]
        self.best_epoch = int(state_dict["best_epoch"])
        self.best_state = state_dict["best_state"]
        self.best_summary = dict(state_dict["best_summary"])
        self.best_val_loss = state_dict["best_val_loss"]
        self.elapsed = float(state_dict["elapsed"])
        self.stopped = str(state_dict["stopped"])
        if restore_rng:  # torch's global generator continues where the saved run left it
            torch.set_rng_state(state_dict["rng"])

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._started = time.monotonic() - self.elapsed

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._epoch_started = time.monotonic()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.budget_s is not None:
            spent = time.monotonic() - self._started > self.budget_s
            if trainer.strategy.reduce_boolean_decision(spent, all=False):
                trainer.should_stop = True
                self.stopped = "time limit"

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        assert isinstance(pl_module, TaskModule)
        task, epoch = pl_module.task, pl_module.epoch
        train_loss = pl_module.epoch_train_loss()
        val_loss, summary = (pl_module.validated["loss"], pl_module.validated["summary"]) if pl_module.validated \
            else (None, None)
        self.elapsed = time.monotonic() - self._started
        lr = float(trainer.lr_scheduler_configs[0].scheduler.get_last_lr()[-1])
        row = task.row(epoch, train_loss, val_loss, summary, lr, self.elapsed)
        self.history.append(row)
        rank = list(task.rank(train_loss, val_loss, summary))
        if self.best_rank is None or rank > self.best_rank:
            self.best_rank, self.best_epoch, self.best_val_loss = rank, epoch, val_loss
            self.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in pl_module.model.state_dict().items()})
            self.best_summary = summary or {}
        self._decide_stop(trainer, epoch, summary is not None)
        if self.on_epoch is not None:
            self.on_epoch(row)
        if trainer.is_global_zero and self.history_prefix is not None:
            prefix = self.history_prefix
            write_csv(self.history, prefix.with_name(prefix.name + "-metrics.csv"))
            plot_curves(self.history, prefix.with_name(prefix.name + "-curves.png"), self.title)
        if self.resume_path is not None:
            trainer.save_checkpoint(self.resume_path, weights_only=False)

    def _decide_stop(self, trainer: pl.Trainer, epoch: int, validating: bool) -> None:
        if validating and epoch - self.best_epoch >= self.patience:
            log.info("early stop: no validation gain for %d epochs (best at epoch %d)", self.patience,
                     self.best_epoch)
            self.stopped = "early stop"
        elif (self.budget_s is not None and epoch < (trainer.max_epochs or 0)
              and self.elapsed + (time.monotonic() - self._epoch_started) > self.budget_s):
            log.info("time budget of %.0f s reached after epoch %d", self.budget_s, epoch)
            self.stopped = "time limit"
        else:
            return
        trainer.should_stop = trainer.strategy.reduce_boolean_decision(True, all=False)


class EpochProgress(pl.Callback):
    """A transient progress bar of the batches of each epoch (main process only)."""

    def __init__(self, max_epochs: int) -> None:
        self.max_epochs = max_epochs
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __getstate__(self) -> dict[str, Any]:  # sent to worker processes without the live display
        return {**self.__dict__, "_progress": None, "_task": None}

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        if self._progress is None:
            self._progress = Progress(transient=True)
            self._progress.start()
        total = trainer.num_training_batches
        self._task = self._progress.add_task(f"epoch {trainer.current_epoch + 1}/{self.max_epochs}",
                                             total=total if isinstance(total, int) else None)

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.advance(self._task)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
