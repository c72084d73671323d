"""The training loop: random blocked chips, AdamW + one-cycle, validation mIoU, early stopping, resume."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import math
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress
from torch import nn
from torch.utils.data import DataLoader

from landsight.config import TrainConfig
from landsight.data.datasets import ChipDataset
from landsight.data.transforms import Augment
from landsight.errors import CheckpointError, TrainingError
from landsight.imagery.windows import sample_train_windows
from landsight.metrics import confusion_matrix, summarize
from landsight.outputs import atomic_path
from landsight.torch_utils import check_loss, load_plain, nonfinite_tensors
from landsight.train.history import plot_curves, write_csv
from landsight.train.losses import create_loss
from landsight.train.prepare import TrainingData

log = logging.getLogger(__name__)

_RESUME_FIX = "delete it or pass --restart to start over"
_DIVERGED_FIX = "lower --lr (or fix the input) and rerun with --restart"


@dataclasses.dataclass
class FitResult:
    """Best weights, the validation metrics they scored and the per-epoch history."""

    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int


def run_key(config: TrainConfig, data: TrainingData) -> str:
    """Identifies a training run, so a resume state is only reused for the same run."""
    text = json.dumps({"config": dataclasses.asdict(config), "data": data.fingerprint()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _loader(data: TrainingData, chips: list[Any], config: TrainConfig, augment: bool, seed: int) -> DataLoader:
    dataset = ChipDataset(data.pairs, chips, data.bands, data.normalization, data.classes.index_lut(),
                          Augment() if augment else None, seed)
    return DataLoader(dataset, batch_size=config.batch_size, shuffle=False, num_workers=config.workers)


def _epoch_chips(data: TrainingData, n: int, rng: random.Random) -> list[Any]:
    """`n` random training chips spread over the pairs in proportion to their training area."""
    weights = [len(p) for p in data.positions]
    picks = rng.choices(range(len(weights)), weights=weights, k=n)
    chips = []
    for i in range(len(weights)):
        count = picks.count(i)
        if count:
            chips += [(i, w) for w in sample_train_windows(data.positions[i], count, rng)]
    return chips


def _optimizer(model: nn.Module, config: TrainConfig) -> tuple[torch.optim.Optimizer, list[float]]:
    """AdamW with the pretrained encoder at `encoder_lr_factor` times the decoder's peak learning rate."""
    encoder = getattr(model, "encoder", None)
    encoder_ids = {id(p) for p in encoder.parameters()} if encoder is not None else set()
    groups = [[p for p in model.parameters() if id(p) in encoder_ids],
              [p for p in model.parameters() if id(p) not in encoder_ids]]
    peaks = [config.lr * config.encoder_lr_factor, config.lr]
    params = [{"params": g, "lr": lr} for g, lr in zip(groups, peaks, strict=True) if g]
    optimizer = torch.optim.AdamW(params, weight_decay=config.weight_decay)
    return optimizer, [lr for g, lr in zip(groups, peaks, strict=True) if g]


def _autocast(device: torch.device) -> Any:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _train_epoch(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                 scheduler: Any, device: torch.device, progress: Progress, task: Any) -> float:
    """Mean training loss of one epoch; a non-finite batch loss is returned at once, before any step with it."""
    model.train()
    total, count = 0.0, 0
    for batch in loader:
        image, mask = batch["image"].to(device), batch["mask"].to(device)
        optimizer.zero_grad(set_to_none=True)
        with _autocast(device):
            loss = loss_fn(model(image).float(), mask)
        value = loss.item()
        if not math.isfinite(value):
            return value
        loss.backward()
        optimizer.step()
        scheduler.step()
        total += value * len(image)
        count += len(image)
        progress.advance(task)
    return total / max(count, 1)


@torch.inference_mode()
def evaluate_chips(model: nn.Module, loader: DataLoader, loss_fn: nn.Module, num_classes: int,
                   device: torch.device) -> tuple[float, np.ndarray]:
    """Mean loss and confusion matrix (channel indices) over a loader."""
    model.eval()
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    total, count = 0.0, 0
    for batch in loader:
        image, mask = batch["image"].to(device), batch["mask"].to(device)
        with _autocast(device):
            logits = model(image).float()
        total += float(loss_fn(logits, mask)) * len(image)
        count += len(image)
        cm += confusion_matrix(mask.cpu().numpy(), logits.argmax(1).cpu().numpy(), num_classes)
    return total / max(count, 1), cm


@dataclasses.dataclass
class _State:
    """Everything needed to continue an interrupted run."""

    epoch: int = 0
    best_score: float = float("-inf")
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    best_metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    bad_epochs: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    elapsed: float = 0.0


def _save_resume(path: Path, key: str, state: _State, model: nn.Module, optimizer: Any, scheduler: Any) -> None:
    payload = {"run_key": key, "state": dataclasses.asdict(state), "model": model.state_dict(),
               "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()}
    with atomic_path(path, overwrite=True) as tmp:
        torch.save(payload, tmp)


def _load_resume(path: Path, key: str, model: nn.Module, optimizer: Any, scheduler: Any) -> _State:
    """Restore a run from its resume state (tensors and plain values only, see `load_plain`)."""
    payload = load_plain(path, "resume state of landsight train", _RESUME_FIX)
    if not isinstance(payload, dict) or payload.get("run_key") != key:
        raise CheckpointError(f"{path} holds an interrupted run with other settings or data; {_RESUME_FIX}")
    try:
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        state = _State(**payload["state"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        problem = " ".join(str(exc).split())[:120]
        raise CheckpointError(f"{path} is a damaged resume state ({type(exc).__name__}: {problem}); "
                              f"{_RESUME_FIX}") from exc
    if not isinstance(state.epoch, int) or (state.best_state is not None and nonfinite_tensors(state.best_state)):
        raise CheckpointError(f"{path} is a damaged resume state (epoch {state.epoch!r}); {_RESUME_FIX}")
    return state


def _epoch_row(epoch: int, train_loss: float, val_loss: float | None, summary: dict[str, Any] | None,
               lr: float, seconds: float) -> dict[str, Any]:
    row: dict[str, Any] = {"epoch": epoch, "train_loss": round(train_loss, 5),
                           "val_loss": None if val_loss is None else round(val_loss, 5)}
    if summary is not None:
        row["val_miou"] = summary["mean_iou"]
        row.update({f"val_iou_{name}": s["iou"] for name, s in summary["per_class"].items()})
    row["lr"] = lr
    log.debug("epoch %d took %.1f s", epoch, seconds)
    return row


@dataclasses.dataclass
class _Run:
    """The pieces one training run keeps across epochs."""

    model: nn.Module
    data: TrainingData
    config: TrainConfig
    device: torch.device
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    val_loader: DataLoader | None


def _epoch(run: _Run, epoch: int, progress: Progress) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Train one epoch on fresh random chips, then validate; returns (history row, validation summary)."""
    config = run.config
    t0 = time.monotonic()
    torch.manual_seed(config.seed * 100_003 + epoch)  # dropout etc.: the same draws whether or not a run resumed
    chips = _epoch_chips(run.data, config.chips_per_epoch, random.Random(config.seed * 100_003 + epoch))
    task = progress.add_task(f"epoch {epoch}/{config.epochs}", total=-(-len(chips) // config.batch_size))
    loader = _loader(run.data, chips, config, config.augment, config.seed + epoch)
    train_loss = _train_epoch(run.model, loader, run.loss_fn, run.optimizer, run.scheduler, run.device, progress,
                              task)
    progress.remove_task(task)
    check_loss(train_loss, epoch, config.lr, _DIVERGED_FIX)
    val_loss, summary = None, None
    if run.val_loader is not None:
        val_loss, cm = evaluate_chips(run.model, run.val_loader, run.loss_fn, len(run.data.classes), run.device)
        check_loss(val_loss, epoch, config.lr, _DIVERGED_FIX, "validation loss")
        summary = summarize(cm, run.data.classes.names)
    lr = run.scheduler.get_last_lr()[-1]
    return _epoch_row(epoch, train_loss, val_loss, summary, lr, time.monotonic() - t0), summary


def _record(state: _State, epoch: int, row: dict[str, Any], summary: dict[str, Any] | None, model: nn.Module) -> None:
    """Append the epoch to the history and keep the weights if they score best (validation mIoU, else -loss)."""
    state.history.append(row)
    score = (summary["mean_iou"] or 0.0) if summary else -row["train_loss"]
    if score > state.best_score:
        state.best_score, state.best_epoch, state.bad_epochs = score, epoch, 0
        state.best_state = copy.deepcopy({k: v.detach().cpu() for k, v in model.state_dict().items()})
        state.best_metrics = summary or {}
    else:
        state.bad_epochs += 1
    state.epoch = epoch
    log.info("epoch %d: train loss %.4f%s", epoch, row["train_loss"],
             f", val loss {row['val_loss']:.4f}, val mIoU {row['val_miou']:.3f}" if summary else "")


def _val_loader(data: TrainingData, config: TrainConfig) -> DataLoader | None:
    val_chips = [(i, w) for i, split in enumerate(data.splits) for w in split.val]
    return _loader(data, val_chips, config, augment=False, seed=0) if val_chips else None


def validate(model: nn.Module, data: TrainingData, config: TrainConfig, device: torch.device) -> dict[str, Any]:
    """Metrics of `model` on the validation chips of `data` (empty without validation chips)."""
    loader = _val_loader(data, config)
    if loader is None:
        return {}
    loss_fn = create_loss(config.loss, len(data.classes), config.class_weights).to(device)
    _, cm = evaluate_chips(model.to(device), loader, loss_fn, len(data.classes), device)
    return summarize(cm, data.classes.names)


def _setup(model: nn.Module, data: TrainingData, config: TrainConfig, device: torch.device) -> _Run:
    torch.manual_seed(config.seed)
    model.to(device)
    val_loader = _val_loader(data, config)
    loss_fn = create_loss(config.loss, len(data.classes), config.class_weights).to(device)
    steps = config.epochs * -(-config.chips_per_epoch // config.batch_size)
    optimizer, peaks = _optimizer(model, config)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=steps, pct_start=0.1)
    return _Run(model, data, config, device, loss_fn, optimizer, scheduler, val_loader)


def _stopping(state: _State, config: TrainConfig, validating: bool, max_minutes: float | None) -> bool:
    """Whether training is over: all epochs run, no validation gain for `patience` epochs, or the time budget spent.
    Checked before each epoch, so a resumed run stops where the uninterrupted one did."""
    if state.epoch >= config.epochs:
        return True
    if validating and state.bad_epochs >= config.patience:
        log.info("early stop: no validation mIoU gain for %d epochs (best %.3f at epoch %d)",
                 config.patience, state.best_score, state.best_epoch)
        return True
    if max_minutes is not None and state.elapsed > 60 * max_minutes:
        log.info("time budget of %.1f min reached after epoch %d", max_minutes, state.epoch)
        return True
    return False


def fit(model: nn.Module, data: TrainingData, config: TrainConfig, device: torch.device, resume_path: Path,
        curves_prefix: Path, restart: bool = False, max_minutes: float | None = None) -> FitResult:
    """Train `model` on `data`; keep the weights with the best validation mIoU; resume from `resume_path`."""
    run = _setup(model, data, config, device)
    key = run_key(config, data)
    state = _State()
    if resume_path.exists() and not restart:
        state = _load_resume(resume_path, key, model, run.optimizer, run.scheduler)
        log.info("resuming from %s after epoch %d", resume_path, state.epoch)
    started = time.monotonic() - state.elapsed
    with Progress(transient=True) as progress:
        while not _stopping(state, config, run.val_loader is not None, max_minutes):
            row, summary = _epoch(run, state.epoch + 1, progress)
            _record(state, state.epoch + 1, row, summary, model)
            state.elapsed = time.monotonic() - started
            # Curves first, resume state last: a run killed in between redoes the epoch and rewrites both.
            write_csv(state.history, curves_prefix.with_name(curves_prefix.name + "-metrics.csv"))
            plot_curves(state.history, curves_prefix.with_name(curves_prefix.name + "-curves.png"),
                        f"{config.arch}/{config.encoder}")
            _save_resume(resume_path, key, state, model, run.optimizer, run.scheduler)
    if state.best_state is None:
        raise CheckpointError(f"{resume_path} holds no trained epoch; pass --restart")
    bad = nonfinite_tensors(state.best_state)
    if bad:
        raise TrainingError(f"the weights of epoch {state.best_epoch} hold NaN or Inf (e.g. {bad[0]}): training "
                            f"diverged, no model was written; {_DIVERGED_FIX}")
    return FitResult(state.best_state, state.best_metrics, state.history, state.best_epoch)
