"""`TaskModule`: a network and its `Task` as a LightningModule, with validation scores kept by torchmetrics (summed
over processes when training on several devices)."""

from __future__ import annotations

import math
from typing import Any

import lightning.pytorch as pl
import torch
import torchmetrics
from torch import nn

from landsight.labels.classes import IGNORE_VALUE
from landsight.learn.task import Shard, Task
from landsight.torch_utils import check_loss


class TaskModule(pl.LightningModule):
    """Trains `model` on `task`: one optimizer step per batch, validation after every epoch."""

    def __init__(self, model: nn.Module, task: Task, run_key: str = "") -> None:
        super().__init__()
        self.model = model
        self.task = task
        self.run_key = run_key
        self.train_loss = torchmetrics.MeanMetric()
        self.val_loss = torchmetrics.MeanMetric()
        self.val_confusion: torchmetrics.Metric = (
            torchmetrics.classification.MultilabelConfusionMatrix(task.num_classes) if task.multi_label else
            torchmetrics.classification.MulticlassConfusionMatrix(task.num_classes, ignore_index=IGNORE_VALUE,
                                                                  validate_args=False))
        self.validated: dict[str, Any] | None = None
        """The last validation: {"loss", "summary"}; None before the first or without validation data."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    @property
    def shard(self) -> Shard:
        """This process's share of the data."""
        return Shard(self.global_rank, self.trainer.world_size)

    @property
    def epoch(self) -> int:
        """The epoch being trained, counted from 1."""
        return self.current_epoch + 1

    def train_dataloader(self) -> Any:
        return self.task.train_loader(self.epoch, self.shard)

    def val_dataloader(self) -> Any:
        return self.task.val_loader(self.shard) or []

    def on_train_epoch_start(self) -> None:
        self.train_loss.reset()
        self.task.epoch_start(self.model, self.epoch)

    def training_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> torch.Tensor:
        x, target = batch["image"], batch["target"]
        loss = self.task.loss(self.model(x).float(), target)
        value = float(loss.detach())
        check_loss(value, self.epoch, self.task.peak_lr, self.task.diverged_fix)  # before any step with it
        self.train_loss.update(loss.detach(), weight=len(x))
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_index: int) -> None:
        x, target = batch["image"], batch["target"]
        logits = self.model(x).float()
        self.val_loss.update(self.task.loss(logits, target), weight=len(x))
        self.val_confusion.update(*self.task.decisions(logits, target))

    def on_validation_epoch_start(self) -> None:
        self.val_loss.reset()
        self.val_confusion.reset()

    def on_validation_epoch_end(self) -> None:
        loss = float(self.val_loss.compute())
        check_loss(loss, self.epoch, self.task.peak_lr, self.task.diverged_fix, "validation loss")
        self.validated = {"loss": loss, "summary": self.task.summary(self.val_confusion.compute().cpu().numpy())}

    def epoch_train_loss(self) -> float:
        """Mean training loss of the epoch over all processes (NaN before any batch)."""
        return float(self.train_loss.compute()) if self.train_loss.update_count else math.nan

    def configure_optimizers(self) -> Any:
        optimizer, scheduler = self.task.optimizers(self.model, self.shard)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["task"] = self.task.state_dict()
        checkpoint["run_key"] = self.run_key

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.task.load_state_dict(checkpoint.get("task", {}))
