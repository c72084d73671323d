"""Confusion-matrix metrics shared by training, evaluation and comparison. Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from landsight.labels.classes import IGNORE_VALUE


def confusion_matrix(truth: np.ndarray, pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts, rows = truth index, columns = predicted index.

    Pixels whose truth or prediction is IGNORE_VALUE (or outside 0..num_classes-1) are skipped.
    """
    truth = truth.ravel().astype(np.int64)
    pred = pred.ravel().astype(np.int64)
    keep = (truth < num_classes) & (pred < num_classes) & (truth != IGNORE_VALUE) & (truth >= 0) & (pred >= 0)
    flat = truth[keep] * num_classes + pred[keep]
    return np.bincount(flat, minlength=num_classes**2).reshape(num_classes, num_classes)


def per_class_scores(cm: np.ndarray) -> dict[str, np.ndarray]:
    """IoU, F1, precision, recall and MCC per class from a confusion matrix (NaN where undefined)."""
    cm = cm.astype(np.float64)
    tp = np.diag(cm)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    tn = cm.sum() - tp - fp - fn
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = tp / (tp + fp + fn)
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
        mcc = (tp * tn - fp * fn) / np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return {"iou": iou, "f1": f1, "precision": precision, "recall": recall, "mcc": mcc}


def summarize(cm: np.ndarray, names: Sequence[str]) -> dict[str, Any]:
    """JSON-ready metrics: per class, their means over classes present in truth or prediction, and accuracy."""
    scores = per_class_scores(cm)
    present = (cm.sum(axis=0) + cm.sum(axis=1)) > 0
    result: dict[str, Any] = {"per_class": {}, "pixels": int(cm.sum())}
    for i, name in enumerate(names):
        result["per_class"][name] = {k: _clean(v[i]) for k, v in scores.items()}
        result["per_class"][name]["support"] = int(cm[i].sum())
    for key, values in scores.items():
        valid = values[present & ~np.isnan(values)]
        result[f"mean_{key}"] = _clean(valid.mean()) if valid.size else None
    result["accuracy"] = _clean(np.trace(cm) / cm.sum()) if cm.sum() else None
    result["confusion_matrix"] = cm.astype(int).tolist()
    result["classes"] = list(names)
    return result


def _clean(value: float) -> float | None:
    return None if np.isnan(value) else round(float(value), 6)
