"""Segmentation as a `Task`: random chips drawn afresh each epoch from the training blocks, AdamW + one-cycle,
validation mIoU from the confusion matrix."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import random
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from landsight.config import TrainConfig
from landsight.data.datasets import ChipDataset
from landsight.data.transforms import Augment
from landsight.imagery.windows import box_window, sample_train_windows
from landsight.labels.weights import class_weights
from landsight.learn.task import Shard, Task
from landsight.metrics import summarize
from landsight.train.losses import create_loss
from landsight.train.prepare import TrainingData
from landsight.train.sampling import draw_labelled_chips

log = logging.getLogger(__name__)

DIVERGED_FIX = "lower `lr` (or fix the input) and rerun with `restart=True`"


def run_key(config: TrainConfig, data: TrainingData) -> str:
    """Identifies a training run, so a resume state is only reused for the same run."""
    text = json.dumps({"config": dataclasses.asdict(config), "data": data.fingerprint()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def loss_weights(config: TrainConfig, data: TrainingData) -> list[float] | None:
    """The cross-entropy class weights: as configured, or with "auto" from the training pixels
    (`landsight.labels.weights.class_weights`)."""
    if config.class_weights == "auto":
        weights = class_weights(np.asarray(data.class_pixels, dtype=np.float32)).tolist()
        log.info("class weights from the training pixels: %s", dict(zip(data.classes.names, weights, strict=True)))
        return weights
    return None if config.class_weights is None else list(config.class_weights)


def epoch_chips(data: TrainingData, n: int, rng: random.Random) -> list[Any]:
    """`n` random training chips: around labelled pixels, each class alike (`TrainingData.by_class`), or spread over
    the pairs in proportion to their training area."""
    if data.by_class is not None:
        return [(i, box_window(box)) for i, box in draw_labelled_chips(data.by_class, data.positions, n, rng)]
    weights = [len(p) for p in data.positions]
    picks = rng.choices(range(len(weights)), weights=weights, k=n)
    chips = []
    for i in range(len(weights)):
        count = picks.count(i)
        if count:
            chips += [(i, w) for w in sample_train_windows(data.positions[i], count, rng)]
    return chips


class SegmentationTask(Task):
    """Per-pixel classes of chips read window by window from the training rasters."""

    def __init__(self, data: TrainingData, config: TrainConfig) -> None:
        self.data = data
        self.config = config
        self.num_classes = len(data.classes)
        self.peak_lr = config.lr
        self.diverged_fix = DIVERGED_FIX
        self.loss_fn = create_loss(config.loss, self.num_classes, loss_weights(config, data))

    def _loader(self, chips: list[Any], augment: bool, seed: int, batch_size: int,
                validation: bool = False) -> DataLoader[Any]:
        data = self.data
        pairs = data.val_pairs if validation else data.pairs
        dataset = ChipDataset(pairs, chips, data.bands, data.normalization, data.classes.index_lut(),
                              Augment() if augment else None, seed)
        # its own generator: starting an iteration draws no number from torch's global one (dropout's, reseeded
        # each epoch), however often Lightning starts one
        return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=self.config.workers,
                          generator=torch.Generator().manual_seed(seed))

    def train_loader(self, epoch: int, shard: Shard) -> DataLoader[Any]:
        config = self.config
        chips = epoch_chips(self.data, config.chips_per_epoch, random.Random(config.seed * 100_003 + epoch))
        return self._loader(shard.take(chips), config.augment, config.seed + epoch, shard.batch_size(config.batch_size))

    def val_loader(self, shard: Shard) -> DataLoader[Any] | None:
        chips = [(i, w) for i, split in enumerate(self.data.splits) for w in split.val]
        if not chips:
            return None
        return self._loader(shard.take(chips), False, 0, shard.batch_size(self.config.batch_size), validation=True)

    def optimizers(self, model: nn.Module, shard: Shard) -> tuple[torch.optim.Optimizer, Any]:
        """AdamW with the pretrained encoder at `encoder_lr_factor` times the decoder's peak learning rate, on a
        one-cycle schedule over every step of `epochs` epochs."""
        config = self.config
        encoder = getattr(model, "encoder", None)
        encoder_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
        groups = [[p for p in model.parameters() if id(p) in encoder_ids],
                  [p for p in model.parameters() if id(p) not in encoder_ids]]
        peaks = [config.lr * config.encoder_lr_factor, config.lr]
        used = [(g, lr) for g, lr in zip(groups, peaks, strict=True) if g]
        optimizer = torch.optim.AdamW([{"params": g, "lr": lr} for g, lr in used], weight_decay=config.weight_decay)
        per_process = -(-config.chips_per_epoch // shard.world)
        steps = config.epochs * -(-per_process // shard.batch_size(config.batch_size))
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[lr for _, lr in used], total_steps=steps,
                                                        pct_start=0.1)
        return optimizer, scheduler

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.loss_fn.to(logits.device)(logits, target)

    def epoch_start(self, model: nn.Module, epoch: int) -> None:
        torch.manual_seed(self.config.seed * 100_003 + epoch)  # dropout etc.: the same draws whether or not resumed

    def summary(self, confusion: np.ndarray) -> dict[str, Any]:
        return summarize(confusion, self.data.classes.names)

    def rank(self, train_loss: float, val_loss: float | None, summary: dict[str, Any] | None) -> tuple[float, ...]:
        """Validation mIoU, else the negative training loss."""
        return ((summary["mean_iou"] or 0.0),) if summary is not None else (-round(train_loss, 5),)

    def row(self, epoch: int, train_loss: float, val_loss: float | None, summary: dict[str, Any] | None,
            lr: float, elapsed: float) -> dict[str, Any]:
        row: dict[str, Any] = {"epoch": epoch, "train_loss": round(train_loss, 5),
                               "val_loss": None if val_loss is None else round(val_loss, 5)}
        if summary is not None:
            row["val_miou"] = summary["mean_iou"]
            row.update({f"val_iou_{name}": s["iou"] for name, s in summary["per_class"].items()})
        row["lr"] = lr
        return row
