"""The resume folder of `train_classifier` (OUTPUT.resume/): what an interrupted search or ensemble had finished, so
that running the same training again continues instead of starting over.

It holds `search.json` (the run's key, the measured epoch costs, the plan of every started candidate or member, the
files of the finished ones and, once the search ended, its outcome), one `finished-N.pt` per finished candidate or
member (its results and best weights) and the resume state `running-N.resume.pt` of the one being trained. Every
file is written atomically and read back with `load_plain` (nothing is unpickled).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landsight.classify.chips import ChipSet
from landsight.classify.fit import Trial, TrialResult
from landsight.errors import CheckpointError, LandsightError
from landsight.outputs import atomic_path, check_output
from landsight.torch_utils import load_plain, nonfinite_tensors

log = logging.getLogger(__name__)

FIX = "delete it or pass `restart=True` to start over"


def run_key(chips: ChipSet, settings: dict[str, Any]) -> str:
    """Identifies a training: a hash of its `settings` (a TrainSettings as a dict) and of the chips."""
    digest = hashlib.sha256()
    for array in (chips.images, chips.targets, chips.boxes):
        digest.update(np.ascontiguousarray(array).tobytes())
    text = json.dumps({"settings": settings, "chips": digest.hexdigest(), "classes": chips.classes,
                       "bands": list(chips.bands.names), "ids": chips.ids, "crs": chips.crs,
                       "multi_label": chips.multi_label}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class SearchStore:
    """Finished candidates and ensemble members of one training, by name, and where the running one resumes from."""

    def __init__(self, folder: Path, key: str, state: dict[str, Any]) -> None:
        self.folder, self.key, self.state = folder, key, state

    def costs(self) -> dict[str, float] | None:
        """Seconds per epoch and backbone measured by the interrupted run (None: not measured yet)."""
        costs = self.state["costs"]
        return None if costs is None else {str(k): float(v) for k, v in costs.items()}

    def save_costs(self, costs: dict[str, float]) -> None:
        """Keep the measured epoch costs, so a resumed search plans alike."""
        self.state["costs"] = dict(costs)
        self._write_state()

    def plan(self, name: str) -> tuple[int, float] | None:
        """(epochs, seconds) `name` was started with, if an earlier run started it."""
        found = self.state["plans"].get(name)
        return None if found is None else (int(found[0]), float(found[1]))

    def save_plan(self, name: str, epochs: int, seconds: float) -> None:
        """Record that `name` starts training for at most `epochs` epochs and `seconds` seconds."""
        self.state["plans"][name] = [epochs, seconds]
        self._write_state()

    def resume_path(self, name: str) -> Path:
        """The resume state of `name` while it trains (`name` must have a plan)."""
        return self.folder / f"running-{list(self.state['plans']).index(name)}.resume.pt"

    def finished(self, name: str) -> TrialResult | None:
        """`name`'s result when an earlier run finished it."""
        file = self.state["finished"].get(name)
        if file is None:
            return None
        path = self.folder / Path(str(file)).name
        saved = load_plain(path, "finished candidate of landsight classify train", FIX)
        if not isinstance(saved, dict) or saved.get("run_key") != self.key or not isinstance(saved.get("result"),
                                                                                               dict):
            raise CheckpointError(f"{path} is not a finished candidate of this training; {FIX}")
        return _result(saved["result"], path)

    def save_finished(self, name: str, result: TrialResult) -> None:
        """Keep `result` (best weights included) and drop `name`'s resume state."""
        path = self.folder / f"finished-{len(self.state['finished'])}.pt"
        fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result)}
        with atomic_path(path, overwrite=True) as tmp:
            torch.save({"run_key": self.key, "result": {**fields, "trial": dataclasses.asdict(result.trial)}}, tmp)
        self.state["finished"][name] = path.name
        self._write_state()
        if name in self.state["plans"]:
            self.resume_path(name).unlink(missing_ok=True)

    def searched(self) -> tuple[list[TrialResult], list[dict[str, Any]], dict[str, float]] | None:
        """The finished search of an earlier run: its results in order, skipped candidates and epoch costs."""
        done = self.state["search"]
        if done is None:
            return None
        results = [self.finished(str(name)) for name in done["candidates"]]
        if any(r is None for r in results):
            raise CheckpointError(f"{self.folder / 'search.json'} names candidates it holds no results of; {FIX}")
        costs = {str(k): float(v) for k, v in done["costs"].items()}
        return [r for r in results if r is not None], list(done["skipped"]), costs

    def save_search(self, results: list[TrialResult], skipped: list[dict[str, Any]], costs: dict[str, float]) -> None:
        """Record the end of the search (its results are already saved, by candidate label)."""
        self.state["search"] = {"candidates": [r.trial.label() for r in results], "skipped": skipped,
                                "costs": dict(costs)}
        self._write_state()

    def _write_state(self) -> None:
        with atomic_path(self.folder / "search.json", overwrite=True) as tmp:
            tmp.write_text(json.dumps(self.state, indent=1))


def _result(saved: dict[str, Any], path: Path) -> TrialResult:
    try:
        result = TrialResult(**{**saved, "trial": Trial(**saved["trial"])})
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is a damaged finished candidate ({type(exc).__name__}: {exc}); {FIX}") from exc
    if not isinstance(result.state_dict, dict) or nonfinite_tensors(result.state_dict):
        raise CheckpointError(f"{path} holds no usable weights; {FIX}")
    return result


def resume_folder(output: Path) -> Path:
    """Where the training that writes `output` keeps its resume state."""
    return output.with_name(output.name + ".resume")


@contextlib.contextmanager
def resumable(output: Path, key: str, restart: bool) -> Iterator[SearchStore]:
    """The resume folder of the training `key` writing `output`: an earlier run's (unless `restart`), or a new one.

    Removed when the block ends normally (the model was written) or, when this run made it, with a LandsightError
    (refused input or settings, diverged training); kept when the run is interrupted.
    """
    folder = resume_folder(output)
    if restart and folder.exists():
        shutil.rmtree(check_output(folder, overwrite=True, directory=True))
    resuming = folder.exists()
    store = SearchStore(folder, key, _read_state(folder, key) if resuming else _new_state(folder, key))
    if resuming:
        log.info("resuming the interrupted training in %s (%d candidate(s) or member(s) already trained)", folder,
                 len(store.state["finished"]))
    try:
        yield store
    except LandsightError:
        if not resuming:
            shutil.rmtree(folder, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)


def _new_state(folder: Path, key: str) -> dict[str, Any]:
    state: dict[str, Any] = {"run_key": key, "costs": None, "plans": {}, "finished": {}, "search": None}
    with atomic_path(folder, directory=True) as tmp:
        (tmp / "search.json").write_text(json.dumps(state, indent=1))
    return state


def _read_state(folder: Path, key: str) -> dict[str, Any]:
    """search.json of an earlier run, checked: of the training `key`, with the parts this module writes."""
    path = folder / "search.json"
    try:
        state = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{folder} is not the resume folder of a landsight classifier training "
                              f"({type(exc).__name__} reading search.json); {FIX}") from exc
    if not _valid(state):
        raise CheckpointError(f"{path} is a damaged resume state (missing or mistyped parts); {FIX}")
    if state["run_key"] != key:
        raise CheckpointError(f"{folder} holds an interrupted training with other settings or data; {FIX}")
    return state


def _valid(state: Any) -> bool:
    """Whether `state` has the parts, and types, that `SearchStore` writes."""
    if not isinstance(state, dict) or not isinstance(state.get("run_key"), str):
        return False
    plans, finished, search = state.get("plans"), state.get("finished"), state.get("search")
    return ((state.get("costs") is None or _numbers(state["costs"]))
            and isinstance(plans, dict) and all(isinstance(p, list) and len(p) == 2 and _numbers(dict(epochs=p[0],
                                                                                                     seconds=p[1]))
                                                for p in plans.values())
            and isinstance(finished, dict) and all(isinstance(f, str) for f in finished.values())
            and (search is None or (isinstance(search, dict) and _numbers(search.get("costs"))
                                    and isinstance(search.get("candidates"), list)
                                    and isinstance(search.get("skipped"), list))))


def _numbers(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(v, (int, float)) for v in value.values())
