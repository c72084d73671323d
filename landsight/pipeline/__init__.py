"""Inference at scale: the segmentation stages as an Apache Beam pipeline (any Beam runner) or a PyFlink job.

`run_pipeline` and `SegmentRasters` need the `pipeline` extra (apache-beam); `run_flink` needs the separate Flink
environment made by scripts/flink-env.sh. The stage functions (`landsight.pipeline.stages`) need neither.
"""

from __future__ import annotations

from typing import Any

from landsight.pipeline.stages import JobConfig

__all__ = ["JobConfig", "SegmentRasters", "expand_inputs", "run_flink", "run_pipeline"]

_LAZY = {"run_pipeline": "landsight.pipeline.run", "expand_inputs": "landsight.pipeline.inputs",
         "SegmentRasters": "landsight.pipeline.transforms", "run_flink": "landsight.pipeline.flink"}


def __getattr__(name: str) -> Any:
    """Import Beam (or the Flink launcher) only when its API is used."""
    if name not in _LAZY:
        raise AttributeError(f"module 'landsight.pipeline' has no attribute {name!r}")
    import importlib

    try:
        module = importlib.import_module(_LAZY[name])
    except ImportError as exc:
        from landsight.errors import MissingExtraError

        raise MissingExtraError(f"{name} needs Apache Beam: pip install 'landsight[pipeline]' ({exc})") from exc
    return getattr(module, name)
