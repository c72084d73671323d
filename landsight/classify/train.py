"""`train_classifier`: chips -> split -> normalization -> automatic search -> one test evaluation -> MODEL + report."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landsight.classify.automl import SearchResult, SearchSettings, batch_size_for, search
from landsight.classify.baseline import fit_baseline
from landsight.classify.chips import ChipSet
from landsight.classify.evaluate import decide, evaluate, macro_f1, worst_errors
from landsight.classify.fit import TensorData, TrialResult, predict_probs, run_trial
from landsight.classify.network import ARCH, create_classifier, embeddings
from landsight.classify.report import ReportPaths, plot_gallery, write_figures, write_html, write_json
from landsight.classify.resume import SearchStore, resumable, run_key
from landsight.classify.rules import CLOUD_CLASSES
from landsight.classify.similar import precision_at_k
from landsight.classify.split import SPLITS, ChipSplit, save_split, split_chips
from landsight.errors import ConfigError
from landsight.imagery.bands import Normalization, check_units, reflectance_normalization
from landsight.imagery.fill_values import FillValueCheck
from landsight.imagery.normalize import NORM_MODES, REFLECTANCE_SPREAD, InputStats, fit_normalization, normalize
from landsight.labels.classes import ClassTable
from landsight.learn.history import write_csv
from landsight.models.chip_statistics import CHIP_STATISTICS
from landsight.models.ensemble import Ensemble
from landsight.models.model_file import ModelFile
from landsight.outputs import check_output
from landsight.torch_utils import resolve_device

log = logging.getLogger(__name__)

CLASSIFIER_MODEL_CHOICES = ("auto", "network")
"""What a classifier MODEL file holds: the better on validation macro F1 of the network and the chip-statistics
baseline (auto), or the network."""

REPORT_RESERVE = 0.06
"""Share of the budget kept for the test evaluation, the similarity check and the report (at least 8 s)."""


@dataclasses.dataclass(frozen=True)
class TrainSettings:
    """Everything but the data: the search settings, normalization mode, split and device."""

    search: SearchSettings
    normalization: str = "dataset"
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    block_chips: float = 2.0
    device: str = "auto"
    preset: str | None = None
    ensemble: int = 1
    model: str = "auto"

    def __post_init__(self) -> None:
        if self.model not in CLASSIFIER_MODEL_CHOICES:
            raise ConfigError(f"`model` {self.model!r}: choose from {list(CLASSIFIER_MODEL_CHOICES)}")
        if self.ensemble < 1:
            raise ConfigError(f"ensemble {self.ensemble}: need at least one member")
        if self.normalization not in NORM_MODES:
            raise ConfigError(f"`normalization` {self.normalization!r}: choose from {list(NORM_MODES)}")
        if abs(sum(self.fractions) - 1) > 1e-6 or min(self.fractions) <= 0:
            raise ConfigError(f"split fractions {self.fractions} must be positive and add up to 1")


def _tensors(chips: ChipSet, split: ChipSplit, settings: TrainSettings,
             normalization: Any) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    x = torch.from_numpy(normalize(chips.images, settings.normalization, normalization))
    y = torch.from_numpy(chips.targets)
    return {s: (x[getattr(split, s)], y[getattr(split, s)]) for s in SPLITS}


def _class_counts(chips: ChipSet, split: ChipSplit) -> dict[str, dict[str, int]]:
    return {name: {s: int(chips.targets[getattr(split, s), k].sum()) for s in SPLITS}
            for k, name in enumerate(chips.classes)}


@torch.inference_mode()
def _similarity(model: torch.nn.Module, x: torch.Tensor, targets: np.ndarray, test: np.ndarray,
                device: torch.device, k: int = 5) -> dict[str, Any]:
    """Precision@k of test chips queried against every other chip, with the chosen model's embeddings."""
    model.eval()
    vectors = torch.cat([embeddings(model, x[i:i + 128].to(device)).cpu() for i in range(0, len(x), 128)]).numpy()
    return {"k": k, "queries": len(test), "index_size": len(x),
            "precision_at_k": round(precision_at_k(vectors, targets, test.tolist(), k), 4)}


def _gallery(chips: ChipSet, split: ChipSplit, probs: np.ndarray, paths: ReportPaths,
             decision: dict[str, Any]) -> list[dict[str, Any]]:
    """Plot the worst test errors; return them as JSON rows."""
    targets = chips.targets[split.test]
    worst = worst_errors(probs, targets, chips.multi_label, 12, **decision)
    decided = decide(probs, chips.multi_label, **decision)
    rows, images, captions = [], [], []
    for i in worst:
        truth = [c for c, t in zip(chips.classes, targets[i], strict=True) if t > 0.5]
        pred = int(np.argmax(decided[i] + probs[i] * 1e-3))
        rows.append({"id": chips.ids[split.test[i]], "truth": truth, "predicted": chips.classes[pred],
                     "probability": round(float(probs[i, pred]), 4)})
        images.append(chips.images[split.test[i]])
        captions.append(f"{'+'.join(truth)[:20]} -> {chips.classes[pred][:20]} ({probs[i, pred]:.2f})")
    plot_gallery(images, captions, chips.bands, paths.errors, "worst test errors")
    return rows


def _report(chips: ChipSet, split: ChipSplit, result: SearchResult, test: dict[str, Any], settings: TrainSettings,
            output: Path, started: float) -> dict[str, Any]:
    return {
        "model": str(output), "task": "classification", "multi_label": chips.multi_label, "classes": chips.classes,
        "bands": list(chips.bands.names), "normalization": settings.normalization, "preset": settings.preset,
        "data": {**chips.source, "chips": len(chips), "class_counts": chips.counts()},
        "split": {**split.summary(), "class_counts": _class_counts(chips, split)},
        "candidates": [r.row() for r in result.results], "skipped": result.skipped,
        "chosen": result.best.row(), "epoch_seconds": {k: round(v, 2) for k, v in result.epoch_seconds.items()},
        "budget_s": settings.search.budget, "elapsed_s": round(time.monotonic() - started, 1),
        "test": test, "tta": True, "history": [row for r in result.results for row in r.history],
    }


def train_classifier(chips: ChipSet, output: str | Path, settings: TrainSettings, overwrite: bool = False,
                     started: float | None = None, restart: bool = False) -> tuple[ModelFile, dict[str, Any]]:
    """Split, search within the budget, evaluate the chosen model once on the test split, save MODEL and report.

    `started` (time.monotonic()) is when the budget began, e.g. before the chips were read. An interrupted run
    leaves OUTPUT.resume/ (see `resumable`): the same training run again reuses its finished candidates and ensemble
    members, continues the interrupted one from its last epoch, and has the whole budget again for what is left;
    `restart` ignores it.
    """
    started = time.monotonic() if started is None else started
    output = check_output(output, overwrite)
    paths = ReportPaths.for_model(output)
    paths.check(overwrite)
    split = split_chips(chips, settings.fractions, settings.search.seed, settings.block_chips)
    log.info("split: %s%s", split.sizes(), " (spatially blocked)" if split.blocked else "")
    for note in split.notes:
        log.warning(note)
    train_images = chips.images[split.train]
    data_warnings = _fill_value_warnings(chips)
    normalization = _normalization(chips, train_images)
    tensors = _tensors(chips, split, settings, normalization)
    data = TensorData(*tensors["train"], *tensors["val"], chips.multi_label)
    device = resolve_device(settings.device)
    deadline = started + settings.search.budget - max(8.0, REPORT_RESERVE * settings.search.budget)
    with resumable(output, run_key(chips, dataclasses.asdict(settings)), restart) as store:
        result = search(data, settings.search, device,
                        time.monotonic() + (deadline - time.monotonic()) / settings.ensemble, store)
        members = [result.best, *_more_members(result.best, data, settings, device, deadline, store)]
        network = _network(chips, result.best.trial.backbone, members).to(device)
        baseline, fit_info = fit_baseline(*tensors["train"], *tensors["val"], chips.multi_label)
        decision = _decision(chips, settings)
        val_probs = predict_probs(baseline, tensors["val"][0], chips.multi_label, device)
        val_f1 = macro_f1(val_probs, chips.targets[split.val], chips.multi_label)
        kept = "baseline" if settings.model == "auto" and val_f1 > result.best.score else "network"
        tests = {}
        for name, candidate in (("network", network), ("baseline", baseline)):
            probs = predict_probs(candidate.to(device), tensors["test"][0], chips.multi_label, device, tta=True)
            tests[name] = (probs, evaluate(probs, chips.targets[split.test], chips.classes, chips.multi_label,
                                           **decision))
        model = baseline if kept == "baseline" else network
        probs, test = tests[kept]
        log.info("validation macro F1: network %.3f, baseline (%s) %.3f; kept the %s", result.best.score,
                 "chip statistics", val_f1, kept)
        report = _report(chips, split, result, test, settings, output, started)
        report["data"]["warnings"] = data_warnings
        report["similarity"] = _similarity(model, torch.cat([tensors[s][0] for s in SPLITS]),
                                           np.concatenate([chips.targets[getattr(split, s)] for s in SPLITS]),
                                           np.arange(len(split.train) + len(split.val), sum(split.sizes().values())),
                                           device)
        report["worst_errors"] = _gallery(chips, split, probs, paths, decision)
        report["baseline"] = {**fit_info, "val_macro_f1": round(val_f1, 4), "test": _brief(tests["baseline"][1])}
        report["kept"] = kept
        if kept == "baseline":
            report["network_test"] = _brief(tests["network"][1])
        report["ensemble"] = [{"seed": settings.search.seed + k, "val_macro_f1": round(m.score, 4),
                               "best_epoch": m.best_epoch, "epochs": m.epochs} for k, m in enumerate(members)]
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        model_file = _model_file(chips, result.best.trial.backbone if kept == "network" else CHIP_STATISTICS,
                                 normalization, state, settings, report, _input_stats(chips, train_images), decision)
        model_file.save(output, overwrite)
        report["sha256"] = model_file.sha256
        report["elapsed_s"] = round(time.monotonic() - started, 1)
        _write_outputs(report, chips, split, paths, overwrite)
    return model_file, report


def _normalization(chips: ChipSet, train_images: np.ndarray) -> Normalization:
    """The training chips' band statistics, or for chips in reflectance the fixed physical normalization (after
    checking that their values can be reflectance)."""
    if chips.bands.units != "reflectance":
        return fit_normalization(train_images, chips.bands.names)
    check_units(chips.bands, chips.bands, str(chips.source.get("image", "the training chips")), chips.images)
    return reflectance_normalization(chips.bands.count)


def _input_stats(chips: ChipSet, train_images: np.ndarray) -> InputStats:
    """What the training chips looked like, for the warning on unlike inputs (wider for models in reflectance)."""
    return InputStats.fit(train_images, REFLECTANCE_SPREAD if chips.bands.units == "reflectance" else 0.0)


def _more_members(best: TrialResult, data: TensorData, settings: TrainSettings, device: torch.device,
                  deadline: float, store: SearchStore) -> list[TrialResult]:
    """For an ensemble: the chosen candidate trained again from seeds seed + 1, ... (as many epochs as it ran),
    sharing the time left before `deadline` (time.monotonic()); members finished by an earlier run (in `store`)
    are reused, an interrupted one continues."""
    search_settings = settings.search
    batch_size = batch_size_for(len(data.x_train), search_settings.batch_size)
    members = []
    for k in range(1, settings.ensemble):
        name = f"ensemble member {k + 1}"
        finished = store.finished(name)
        if finished is not None:
            log.info("%s of %d: already trained by an earlier run", name, settings.ensemble)
            members.append(finished)
            continue
        epochs, seconds = store.plan(name) or (best.epochs, max(1.0, (deadline - time.monotonic()) /
                                                                 (settings.ensemble - k)))
        store.save_plan(name, epochs, seconds)
        log.info("%s of %d (seed %d)", name, settings.ensemble, search_settings.seed + k)
        member = run_trial(best.trial, data, seconds, epochs, search_settings.patience, device, batch_size,
                           search_settings.seed + k, choose_on=search_settings.choose_on,
                           resume_path=store.resume_path(name))
        store.save_finished(name, member)
        members.append(member)
    return members


def _network(chips: ChipSet, backbone: str, members: Sequence[TrialResult]) -> torch.nn.Module:
    """The chosen network, or the `Ensemble` of the members' networks."""
    networks = []
    for member in members:
        network = create_classifier(ARCH, backbone, chips.bands.count, len(chips.classes))
        network.load_state_dict(member.state_dict)
        networks.append(network)
    return networks[0] if len(networks) == 1 else Ensemble(networks, multi_label=chips.multi_label)


def _fill_value_warnings(chips: ChipSet) -> list[str]:
    """Logged warnings for bands holding an undeclared nodata value (see `FillValueCheck`)."""
    fills = FillValueCheck(chips.bands.names)
    for start in range(0, len(chips), 256):
        fills.update(chips.images[start:start + 256].transpose(1, 0, 2, 3))
    found = fills.warnings(str(chips.source.get("image", "the chips")))
    for warning in found:
        log.warning(warning)
    return found


def _brief(test: dict[str, Any]) -> dict[str, Any]:
    """Test scores without the precision/recall table (that is the kept model's, in "test")."""
    return {k: v for k, v in test.items() if k != "pr_at_thresholds"}


def _decision(chips: ChipSet, settings: TrainSettings) -> dict[str, Any]:
    """How chips are decided: a cloud gate says cloudy when P(cloudy) reaches 0.5 (`landsight cloud filter --threshold`
    changes it; the report's precision/recall at thresholds shows the trade-off). Choosing the threshold on the small
    validation split was tried and lowered test F1, so it is not done. Other models: the most probable class."""
    if settings.preset != "cloud" or chips.multi_label:
        return {"threshold": 0.5, "positive": None}
    return {"threshold": 0.5, "positive": chips.classes.index(CLOUD_CLASSES[1])}


def _model_file(chips: ChipSet, backbone: str, normalization: Any, state: dict[str, torch.Tensor],
                settings: TrainSettings, report: dict[str, Any], stats: InputStats,
                decision: dict[str, Any]) -> ModelFile:
    summary = {k: report[k] for k in ("data", "split", "candidates", "skipped", "chosen", "budget_s", "preset",
                                      "ensemble")}
    metrics = {k: report[k] for k in ("test", "similarity", "worst_errors", "baseline", "kept")}
    return ModelFile(
        arch=CHIP_STATISTICS if backbone == CHIP_STATISTICS else ARCH, encoder=backbone, bands=chips.bands,
        normalization=normalization,
        classes=ClassTable.from_names(chips.classes, background=False), chip_size=chips.chip_size,
        state_dict=state, task="classification", members=1 if backbone == CHIP_STATISTICS else settings.ensemble,
        training={**summary, "search": dataclasses.asdict(settings.search)},
        metrics=metrics,
        options={"multi_label": chips.multi_label, "normalization_mode": settings.normalization,
                 "threshold": decision["threshold"], "input_stats": stats.to_dict(), "preset": settings.preset,
                 "tta": True,
                 "positive_class": None if decision["positive"] is None else chips.classes[decision["positive"]]},
    )


def _write_outputs(report: dict[str, Any], chips: ChipSet, split: ChipSplit, paths: ReportPaths,
                   overwrite: bool) -> None:
    save_split(split, chips, paths.split, overwrite)
    write_csv(report["history"], paths.history)
    write_figures(report, paths)
    write_json(report, paths.json)
    write_html(report, paths)


def report_files(model: str | Path) -> Sequence[Path]:
    """The report files that exist next to `model`."""
    return [p for p in ReportPaths.for_model(model).all() if p.exists()]
