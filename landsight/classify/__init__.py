"""Image classification without ML expertise: chip sources and rules, blocked splits, an automatic search within a
time budget, honest reports, the cloud gate, predictions and similarity search.

Modules that need torch are imported on first use, so `landsight.classify.chips` & co. stay light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ChipSet": "landsight.classify.chips",
    "DataSpec": "landsight.classify.dataset",
    "load_chips": "landsight.classify.dataset",
    "split_chips": "landsight.classify.split",
    "SearchSettings": "landsight.classify.automl",
    "TrainSettings": "landsight.classify.train",
    "train_classifier": "landsight.classify.train",
    "Classifier": "landsight.classify.classifier",
    "CloudGate": "landsight.classify.gate",
    "predict_to_file": "landsight.classify.predict",
    "SimilarityIndex": "landsight.classify.similar",
    "build_index": "landsight.classify.similar",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
