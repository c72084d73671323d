"""Train a segmentation model from image/label pairs into one self-describing MODEL file."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from landsight.config import TrainConfig
from landsight.errors import CheckpointError, LandsightError
from landsight.imagery.bands import BandUnits
from landsight.labels.classes import ClassTable
from landsight.learn.fit import FitResult, FitSettings, evaluate, fit
from landsight.learn.history import write_csv
from landsight.models.ensemble import Ensemble
from landsight.models.model_file import ModelFile
from landsight.models.registry import PIXEL_FOREST, create_model
from landsight.outputs import atomic_path, check_output
from landsight.torch_utils import load_plain, nonfinite_tensors, resolve_device
from landsight.train.baseline import DESCRIPTION, fit_pixel_forest
from landsight.train.prepare import TrainingData, prepare_training_data
from landsight.train.task import SegmentationTask, loss_weights, run_key

log = logging.getLogger(__name__)


def train_segmentation(pairs: Sequence[tuple[str, str]], output: str | Path, table: ClassTable, field: str | None,
                       background: bool, config: TrainConfig, device: str = "auto",
                       band_indexes: Sequence[int] | None = None,
                       bounds: tuple[float, float, float, float] | None = None, overwrite: bool = False,
                       restart: bool = False, max_minutes: float | None = None,
                       given: BandUnits | None = None) -> ModelFile:
    """Rasterize, split, train and save. Interrupted runs resume from `OUTPUT.resume.pt` when run again.

    With `config.ensemble` N > 1, N members are trained alike from seeds seed .. seed + N - 1 (each with its share
    of `max_minutes`) and saved as one `Ensemble`; finished members survive an interruption.

    With validation chips, the pixel baseline (`landsight.train.baseline`) is fitted on the same training pixels and
    scored on the same chips; `config.model` "auto" saves it instead of the network when its validation mIoU is
    higher, "network" never, "baseline" trains only it.
    """
    output = check_output(output, overwrite)
    _check_side_outputs(output, config.ensemble, overwrite)
    work_dir = output.with_name(output.name + ".work")
    resuming = work_dir.exists()
    try:
        data = prepare_training_data(pairs, work_dir, table, field, background, config, band_indexes, bounds,
                                     given)
    except BaseException:  # refused input: leave nothing behind
        _discard(work_dir, resuming)
        raise
    n_train, n_val = data.sizes()
    log.info("%d training chip positions, %d validation chips of %d px", n_train, n_val, config.chip_size)
    torch_device = resolve_device(device)
    if config.model == "baseline":
        model_file = _baseline_model(data, config, torch_device, table, n_train, n_val, bounds, background, field)
        model_file.save(output, overwrite)
        shutil.rmtree(work_dir, ignore_errors=True)
        return model_file
    share = max_minutes / config.ensemble if max_minutes is not None else None
    try:
        members = [_train_member(k, data, config, torch_device, output, work_dir, restart, share)
                   for k in range(config.ensemble)]
    except LandsightError:  # a refused resume state or member file, or diverged training
        _discard(work_dir, resuming)
        raise
    training = _training_info(config, data, n_train, n_val, bounds, background, field)
    training.update(best_epoch=members[0].best_epoch, epochs_run=len(members[0].history))
    if config.ensemble == 1:
        state, metrics = members[0].state_dict, members[0].metrics
    else:
        ensemble = Ensemble([_network(config, data, m.state_dict) for m in members])
        state = ensemble.state_dict()
        metrics = evaluate(ensemble, SegmentationTask(data, config), torch_device)
        training["members"] = [{"seed": config.seed + k, "best_epoch": m.best_epoch, "epochs_run": len(m.history),
                                "metrics": m.metrics} for k, m in enumerate(members)]
    model_file = ModelFile(
        arch=config.arch, encoder=config.encoder, bands=data.bands, normalization=data.normalization,
        classes=table, chip_size=config.chip_size, state_dict=state, training=training, metrics=metrics,
        members=config.ensemble,
    )
    if n_val:
        baseline = _baseline_model(data, config, torch_device, table, n_train, n_val, bounds, background, field)
        kept = "baseline" if config.model == "auto" and _better(baseline.metrics, metrics) else "network"
        verdict = _verdict(metrics, baseline.metrics, kept, config.model)
        log.info("%s", verdict)
        training["baseline"] = {"description": DESCRIPTION, "metrics": _brief(baseline.metrics), "kept": kept,
                                "verdict": verdict}
        if config.ensemble == 1:
            _, prefix = _member_paths(output, 0, True)
            write_csv([*members[0].history, _baseline_row(members[0].history, baseline.metrics)],
                      prefix.with_name(prefix.name + "-metrics.csv"))
        if kept == "baseline":
            baseline.training.update(network={"arch": config.arch, "encoder": config.encoder,
                                              "metrics": _brief(metrics)}, baseline=training["baseline"])
            model_file = baseline
    model_file.save(output, overwrite)
    shutil.rmtree(work_dir, ignore_errors=True)
    return model_file


def _training_info(config: TrainConfig, data: TrainingData, n_train: int, n_val: int,
                   bounds: tuple[float, float, float, float] | None, background: bool,
                   field: str | None) -> dict[str, Any]:
    """The model file's record of how it was trained (data, settings, split)."""
    return {"config": dataclasses.asdict(config), "class_weights": loss_weights(config, data),
            "data_sha256": data.fingerprint(), "sources": data.sources, "recipe": data.recipe,
            "train_positions": n_train, "val_chips": n_val,
            "best_epoch": None, "epochs_run": 0, "bounds": list(bounds) if bounds else None,
            "background": background, "class_field": field}


def _baseline_model(data: TrainingData, config: TrainConfig, device: torch.device, table: ClassTable, n_train: int,
                    n_val: int, bounds: tuple[float, float, float, float] | None, background: bool,
                    field: str | None) -> ModelFile:
    """The pixel baseline fitted on the training pixels and scored on the validation chips, as a MODEL file."""
    forest = fit_pixel_forest(data, config.chip_size, config.seed)
    metrics = evaluate(forest, SegmentationTask(data, config), device) if n_val else {}
    training = _training_info(config, data, n_train, n_val, bounds, background, field)
    return ModelFile(arch=PIXEL_FOREST, encoder="random-forest", bands=data.bands, normalization=data.normalization,
                     classes=table, chip_size=config.chip_size, state_dict=forest.state_dict(), training=training,
                     metrics=metrics)


def _better(baseline: dict[str, Any], network: dict[str, Any]) -> bool:
    """True when the baseline's validation mIoU beats the network's."""
    return (baseline.get("mean_iou") or 0.0) > (network.get("mean_iou") or 0.0)


def _brief(metrics: dict[str, Any]) -> dict[str, Any]:
    """mIoU, accuracy and per-class IoU of a validation summary."""
    return {"mean_iou": metrics.get("mean_iou"), "accuracy": metrics.get("accuracy"),
            "iou": {name: s["iou"] for name, s in metrics.get("per_class", {}).items()}}


def _verdict(network: dict[str, Any], baseline: dict[str, Any], kept: str, choice: str) -> str:
    """One line: both validation mIoUs and which model the file holds."""
    def score(metrics: dict[str, Any]) -> str:
        return "n/a" if metrics.get("mean_iou") is None else f"{metrics['mean_iou']:.3f}"

    line = (f"validation mIoU: network {score(network)}, pixel baseline {score(baseline)} ({DESCRIPTION}); "
            f"the model file holds the {kept}")
    if choice == "network" and _better(baseline, network):
        line += ": the pixel baseline is better on validation (`model` auto would keep it)"
    return line


def _baseline_row(history: list[dict[str, Any]], metrics: dict[str, Any]) -> dict[str, Any]:
    """The baseline as a last row of the metrics CSV (epoch "baseline"), in the history's columns."""
    row: dict[str, Any] = dict.fromkeys(history[0]) if history else {}
    row.update(epoch="baseline", val_miou=metrics.get("mean_iou"))
    row.update({f"val_iou_{name}": s["iou"] for name, s in metrics.get("per_class", {}).items()})
    return row


def _member_paths(output: Path, k: int, single: bool) -> tuple[Path, Path]:
    """(resume state, prefix of the metrics CSV and curves PNG) of member `k` of the model written to `output`."""
    name = output.name if single else f"{output.name}.member{k}"
    return (output.with_name(name + ".resume.pt"),
            output.with_suffix("") if single else output.with_name(f"{output.stem}-member{k}"))


def _check_side_outputs(output: Path, members: int, overwrite: bool) -> None:
    """Refuse existing metrics/curves files beside `output` unless `overwrite` or an interrupted run is resumed
    (which rewrites its own)."""
    paths = [_member_paths(output, k, members == 1) for k in range(members)]
    if output.with_name(output.name + ".work").exists() or any(resume.exists() for resume, _ in paths):
        return
    for _, prefix in paths:
        for suffix in ("-metrics.csv", "-curves.png"):
            check_output(prefix.with_name(prefix.name + suffix), overwrite)


def _discard(work_dir: Path, resuming: bool) -> None:
    """Remove the work folder this run made (never one left by an earlier, interrupted run)."""
    if not resuming:
        shutil.rmtree(work_dir, ignore_errors=True)


def _network(config: TrainConfig, data: TrainingData, state: dict[str, torch.Tensor]) -> torch.nn.Module:
    model = create_model(config.arch, config.encoder, data.bands.count, len(data.classes))
    model.load_state_dict(state)
    return model


def _train_member(k: int, data: TrainingData, config: TrainConfig, device: torch.device, output: Path,
                  work_dir: Path, restart: bool, max_minutes: float | None) -> FitResult:
    """Train member `k` (the only one unless `config.ensemble` > 1), or reload it when an earlier run finished it."""
    single = config.ensemble == 1
    member_config = config if single else dataclasses.replace(config, seed=config.seed + k, ensemble=1)
    resume_path, curves = _member_paths(output, k, single)
    finished = work_dir / f"member-{k}.pt"
    key = run_key(member_config, data)
    if not single and finished.exists() and not restart:
        saved = _load_member(finished, key)
        if saved is not None:
            log.info("member %d of %d: already trained by an earlier run", k + 1, config.ensemble)
            return saved
    if not single:
        log.info("member %d of %d (seed %d)", k + 1, config.ensemble, member_config.seed)
    torch.manual_seed(member_config.seed)  # the same initial weights however many members ran before
    model = create_model(config.arch, config.encoder, data.bands.count, len(data.classes),
                         None if resume_path.exists() and not restart else config.weights)
    settings = FitSettings(member_config.epochs, member_config.patience, device, config.devices, config.precision,
                           None if max_minutes is None else 60 * max_minutes, resume_path, restart, curves,
                           f"{config.arch}/{config.encoder}", key)
    result = fit(model, SegmentationTask(data, member_config), settings)
    if not single:
        with atomic_path(finished, overwrite=True) as tmp:
            torch.save({"run_key": key, "result": dataclasses.asdict(result)}, tmp)
    resume_path.unlink(missing_ok=True)
    return result


def _load_member(path: Path, key: str) -> FitResult | None:
    """A member finished by an earlier run of the same training (None when `path` belongs to other settings)."""
    fix = "delete it or pass `restart=True` to train every member again"
    saved = load_plain(path, "finished ensemble member of landsight train", fix)
    if not isinstance(saved, dict) or saved.get("run_key") != key:
        return None
    try:
        result = FitResult(**saved["result"])
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is a damaged ensemble member ({type(exc).__name__}: {exc}); {fix}") from exc
    if not isinstance(result.state_dict, dict) or nonfinite_tensors(result.state_dict):
        raise CheckpointError(f"{path} holds no usable weights; {fix}")
    return result
