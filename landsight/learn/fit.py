"""`fit`: train a network on a `Task` with Lightning, on one device or several (DDP), resumable, in fp32 or bf16."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import signal
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.pytorch.strategies import DDPStrategy
from torch import nn
from torch.multiprocessing.spawn import ProcessRaisedException

from landsight.errors import CheckpointError, ConfigError, TrainingError
from landsight.learn.checkpoint import RESUME_FIX, SafeCheckpointIO, read_resume_state
from landsight.learn.module import TaskModule
from landsight.learn.policy import EpochPolicy, EpochProgress
from landsight.learn.task import Shard, Task
from landsight.torch_utils import nonfinite_tensors

log = logging.getLogger(__name__)


PRECISIONS = ("auto", "32", "bf16")
"""`auto`: bf16 autocast on CUDA, fp32 elsewhere; `32`: fp32; `bf16`: bf16 autocast (CPUs with bf16 support too)."""


@dataclasses.dataclass(frozen=True)
class FitSettings:
    """How to train: epochs, early-stopping patience, time budget (seconds, None: none), device(s), precision,
    where the resume state and the metrics files go (None: not written), and the run's identity for resuming."""

    max_epochs: int
    patience: int
    device: torch.device = dataclasses.field(default_factory=lambda: torch.device("cpu"))
    devices: int = 1
    precision: str = "auto"
    budget_s: float | None = None
    resume_path: Path | None = None
    restart: bool = False
    history_prefix: Path | None = None
    title: str = ""
    run_key: str = ""
    progress: bool = True

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"precision {self.precision!r}: choose from {list(PRECISIONS)}")
        if self.devices < 1:
            raise ConfigError(f"devices must be at least 1 (got {self.devices})")
        if self.device.type == "cuda" and self.devices > torch.cuda.device_count():
            raise ConfigError(f"{self.devices} devices asked for, but {torch.cuda.device_count()} CUDA GPU(s) are "
                              "visible; ask for fewer, or train on the CPU (processes)")
        if self.devices > 1 and self.resume_path is None:
            raise ConfigError("training on several devices needs a resume path to bring the results back")


@dataclasses.dataclass
class FitResult:
    """Best weights, their validation summary, the per-epoch history, the best epoch and why training stopped."""

    state_dict: dict[str, torch.Tensor]
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int
    stopped: str = "max epochs"
    val_loss: float | None = None


def fit(model: nn.Module, task: Task, settings: FitSettings,
        on_epoch: Callable[[dict[str, Any]], None] | None = None) -> FitResult:
    """Train `model` on `task`; keep the best-ranked epoch's weights; resume from `settings.resume_path`."""
    module = TaskModule(model, task, settings.run_key)
    policy = EpochPolicy(settings.patience, settings.budget_s, settings.resume_path, settings.history_prefix,
                         settings.title, on_epoch)
    ckpt_path = _resume_from(settings, module)
    callbacks: list[pl.Callback] = [policy]
    if settings.progress:
        callbacks.append(EpochProgress(settings.max_epochs))
    with tempfile.TemporaryDirectory(prefix="landsight-fit-") as scratch, _temporary_files_in(scratch):
        trainer = pl.Trainer(
            accelerator=settings.device.type, devices=_device_ids(settings), strategy=_strategy(settings),
            precision=_precision(settings.device, settings.precision), max_epochs=settings.max_epochs, logger=False,
            enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
            reload_dataloaders_every_n_epochs=1, use_distributed_sampler=False, plugins=[SafeCheckpointIO()],
            callbacks=callbacks, default_root_dir=scratch)
        _run(trainer, module, ckpt_path)
    if settings.devices > 1:  # the worker processes trained; their last resume state holds the outcome
        assert settings.resume_path is not None
        policy.load_state_dict(_policy_state(read_resume_state(settings.resume_path), policy), restore_rng=False)
    return _result(policy, settings)


def evaluate(model: nn.Module, task: Task, device: torch.device) -> dict[str, Any]:
    """The validation summary of `model` on `task` (empty without validation data)."""
    module = TaskModule(model, task)
    if task.val_loader(Shard()) is None:
        return {}
    trainer = pl.Trainer(accelerator=device.type, devices=1, precision=_precision(device, "auto"),
                         logger=False, enable_progress_bar=False, enable_model_summary=False,
                         use_distributed_sampler=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"lightning\..*")
        trainer.validate(module, verbose=False)
    return module.validated["summary"] if module.validated else {}


def _resume_from(settings: FitSettings, module: TaskModule) -> str | None:
    """The resume state to continue from (checked before Lightning reads it), or None to start over."""
    path = settings.resume_path
    if path is None or settings.restart or not path.exists():
        return None
    state = read_resume_state(path, settings.run_key)
    try:
        module.load_state_dict(state["state_dict"])
    except (RuntimeError, KeyError, TypeError) as exc:
        problem = " ".join(str(exc).split())[:120]
        raise CheckpointError(f"{path} is a damaged resume state ({type(exc).__name__}: {problem}); "
                              f"{RESUME_FIX}") from exc
    log.info("resuming from %s after epoch %d", path, state["epoch"] + 1)
    return str(path)


def _policy_state(state: dict[str, Any], policy: EpochPolicy) -> dict[str, Any]:
    found = state.get("callbacks", {}).get(policy.state_key)
    if not isinstance(found, dict):
        raise TrainingError("the training processes ended without recording an epoch")
    return found


def _device_ids(settings: FitSettings) -> Any:
    if settings.device.type == "cuda" and settings.devices == 1 and settings.device.index is not None:
        return [settings.device.index]
    return settings.devices


def _strategy(settings: FitSettings) -> Any:
    """One process, or DDP over `devices` processes started by spawning (gloo on CPU, NCCL on CUDA)."""
    if settings.devices == 1:
        return "auto"
    backend = "nccl" if settings.device.type == "cuda" else "gloo"
    return DDPStrategy(start_method="spawn", process_group_backend=backend)


def _precision(device: torch.device, precision: str) -> Literal["bf16-mixed", "32-true"]:
    """Lightning's precision for `precision` (see PRECISIONS) on `device`."""
    if precision == "auto":
        return "bf16-mixed" if device.type == "cuda" else "32-true"
    return "bf16-mixed" if precision == "bf16" else "32-true"


def _run(trainer: pl.Trainer, module: TaskModule, ckpt_path: str | None) -> None:
    """`trainer.fit`, with Ctrl-C raised as KeyboardInterrupt (Lightning turns it into an exit) and the SIGINT
    handler Lightning disables restored; a worker process's failure is raised as TrainingError."""
    main_thread = threading.current_thread() is threading.main_thread()
    handler = signal.getsignal(signal.SIGINT) if main_thread else None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module=r"lightning\..*")
            warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
            trainer.fit(module, ckpt_path=ckpt_path)
    except SystemExit:
        if trainer.interrupted:
            raise KeyboardInterrupt from None
        raise
    except ProcessRaisedException as exc:
        raise _worker_error(exc) from exc
    finally:
        if main_thread and handler is not None:
            signal.signal(signal.SIGINT, handler)


@contextlib.contextmanager
def _temporary_files_in(folder: str) -> Iterator[None]:
    """Processes started in the block make their temporary files in `folder`: Lightning's spawn launcher passes the
    trained weights back through a `tempfile.mkdtemp` folder it never removes (one per run, in /tmp otherwise)."""
    previous = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = folder
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = previous


def _worker_error(exc: ProcessRaisedException) -> TrainingError:
    """The TrainingError a training process raised (its message and advice as they were: epoch, learning rate,
    likely cause), or a TrainingError naming the last line of another failure."""
    text = str(exc).strip()
    start = text.rfind(_TRAINING_ERROR)
    if start >= 0:
        return TrainingError(text[start + len(_TRAINING_ERROR):].split("\n\n")[0].strip())
    return TrainingError(f"a training process failed: {text.splitlines()[-1] if text else type(exc).__name__}")


_TRAINING_ERROR = f"{TrainingError.__module__}.{TrainingError.__qualname__}: "
"""How a worker's traceback names a TrainingError (torch passes it to the parent as text)."""


def _result(policy: EpochPolicy, settings: FitSettings) -> FitResult:
    if policy.best_state is None:
        raise CheckpointError(f"{settings.resume_path} holds no trained epoch; pass `restart=True`")
    bad = nonfinite_tensors(policy.best_state)
    if bad:
        raise TrainingError(f"the weights of epoch {policy.best_epoch} hold NaN or Inf (e.g. {bad[0]}): training "
                            "diverged, no model was written; lower the learning rate and start over")
    return FitResult(policy.best_state, policy.best_summary, policy.history, policy.best_epoch, policy.stopped,
                     policy.best_val_loss)
