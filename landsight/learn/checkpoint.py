"""Resume states: Lightning checkpoints written atomically and read back without unpickling anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from lightning.fabric.plugins.io.checkpoint_io import CheckpointIO

from landsight.errors import CheckpointError
from landsight.outputs import atomic_path
from landsight.torch_utils import load_plain, nonfinite_tensors

RESUME_FIX = "delete it or pass `restart=True` to start over"


class SafeCheckpointIO(CheckpointIO):
    """Saves through a temporary name (a killed save leaves the previous state whole); loads tensors and plain
    values only (`load_plain`)."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        with atomic_path(Path(path), overwrite=True) as tmp, open(tmp, "wb") as handle:
            torch.save(checkpoint, handle)

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        state = load_plain(path, "Lightning checkpoint of a landsight training", RESUME_FIX)
        if not isinstance(state, dict):
            raise CheckpointError(f"{path} is not a Lightning checkpoint of a landsight training; {RESUME_FIX}")
        return state

    def remove_checkpoint(self, path: Any) -> None:
        Path(path).unlink(missing_ok=True)


def read_resume_state(path: Path, run_key: str | None = None) -> dict[str, Any]:
    """A resume state written by `fit`, checked: of the run `run_key` (when given), with finite weights."""
    state = load_plain(path, "resume state of a landsight training", RESUME_FIX)
    if not isinstance(state, dict) or not isinstance(state.get("state_dict"), dict) or "loops" not in state:
        raise CheckpointError(f"{path} is a damaged resume state (no weights or loop state); {RESUME_FIX}")
    if run_key is not None and state.get("run_key") != run_key:
        raise CheckpointError(f"{path} holds an interrupted run with other settings or data; {RESUME_FIX}")
    if not isinstance(state.get("epoch"), int) or nonfinite_tensors(state["state_dict"]):
        raise CheckpointError(f"{path} is a damaged resume state (epoch {state.get('epoch')!r}); {RESUME_FIX}")
    return state
