"""Classification scores from predicted probabilities: confusion matrix, per-class precision/recall/F1,
precision/recall at several thresholds, and the worst errors. Pure numpy."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from landsight.metrics import confusion_matrix, summarize

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
"""Decision thresholds at which precision and recall are reported (one class against the rest)."""


def decide(probs: np.ndarray, multi_label: bool, threshold: float = 0.5, positive: int | None = None) -> np.ndarray:
    """(N, K) 0/1 decisions: every class at or above `threshold` (multi-label); else the most probable class, or,
    with a `positive` class (a cloud gate's "cloudy"), that class whenever its probability reaches `threshold`."""
    if multi_label:
        return (probs >= threshold).astype(np.int64)
    index = probs.argmax(axis=1)
    if positive is not None:
        others = probs.copy()
        others[:, positive] = -1.0
        index = np.where(probs[:, positive] >= threshold, positive, others.argmax(axis=1))
    out = np.zeros_like(probs, dtype=np.int64)
    out[np.arange(len(probs)), index] = 1
    return out


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 6) if b else None


def _binary_scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    tp = int((truth & pred).sum())
    fp = int((~truth & pred).sum())
    fn = int((truth & ~pred).sum())
    tn = int((~truth & ~pred).sum())
    return {"precision": _ratio(tp, tp + fp), "recall": _ratio(tp, tp + fn), "f1": _ratio(2 * tp, 2 * tp + fp + fn),
            "support": tp + fn, "confusion": [[tn, fp], [fn, tp]]}


def _multi_label_summary(probs: np.ndarray, targets: np.ndarray, classes: Sequence[str],
                         threshold: float) -> dict[str, Any]:
    truth = targets > 0.5
    pred = decide(probs, True, threshold) > 0
    per_class = {name: _binary_scores(truth[:, k], pred[:, k]) for k, name in enumerate(classes)}
    present = [s["f1"] for k, s in enumerate(per_class.values()) if (truth[:, k] | pred[:, k]).any()]
    micro = _binary_scores(truth.ravel(), pred.ravel())
    return {"per_class": per_class, "mean_f1": round(float(np.mean([f or 0.0 for f in present])), 6) if present
            else None, "micro_f1": micro["f1"], "exact_match": round(float((truth == pred).all(axis=1).mean()), 6),
            "confusion_matrix": None, "classes": list(classes)}


def pr_at_thresholds(probs: np.ndarray, targets: np.ndarray, classes: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Per class, precision and recall of "probability >= t" against the truth, for each t in THRESHOLDS."""
    truth = targets > 0.5
    out = {}
    for k, name in enumerate(classes):
        rows = []
        for t in THRESHOLDS:
            scores = _binary_scores(truth[:, k], probs[:, k] >= t)
            rows.append({"threshold": t, "precision": scores["precision"], "recall": scores["recall"]})
        out[name] = rows
    return out


def evaluate(probs: np.ndarray, targets: np.ndarray, classes: Sequence[str], multi_label: bool,
             threshold: float = 0.5, positive: int | None = None) -> dict[str, Any]:
    """Scores of `probs` (N, K) against 0/1 `targets` (N, K): per class precision/recall/F1 (and the confusion
    matrix for single-label), their macro means, accuracy, and precision/recall at thresholds. Decisions as in
    `decide`."""
    if multi_label:
        result = _multi_label_summary(probs, targets, classes, threshold)
    else:
        pred = decide(probs, False, threshold, positive).argmax(axis=1)
        cm = confusion_matrix(targets.argmax(axis=1), pred, len(classes))
        result = summarize(cm, classes)
        result.pop("pixels", None)
        for scores in result["per_class"].values():
            scores.pop("iou", None)
    result["chips"] = len(probs)
    result["decision"] = {"threshold": threshold, "positive": None if positive is None else classes[positive]}
    result["pr_at_thresholds"] = pr_at_thresholds(probs, targets, classes)
    return result


def macro_f1(probs: np.ndarray, targets: np.ndarray, multi_label: bool) -> float:
    """Mean F1 over the classes present in truth or prediction (0 when nothing is)."""
    names = [str(k) for k in range(targets.shape[1])]
    if multi_label:
        value = _multi_label_summary(probs, targets, names, 0.5)["mean_f1"]
    else:
        value = summarize(confusion_matrix(targets.argmax(axis=1), probs.argmax(axis=1), len(names)), names)["mean_f1"]
    return float(value or 0.0)


def worst_errors(probs: np.ndarray, targets: np.ndarray, multi_label: bool, n: int = 12, threshold: float = 0.5,
                 positive: int | None = None) -> list[int]:
    """Indexes of up to `n` wrongly decided chips, most confidently wrong first."""
    wrong = (decide(probs, multi_label, threshold, positive) != (targets > 0.5)).any(axis=1)
    eps = 1e-7
    if multi_label:
        loss = -(targets * np.log(probs + eps) + (1 - targets) * np.log(1 - probs + eps)).sum(axis=1)
    else:
        loss = -np.log(probs[np.arange(len(probs)), targets.argmax(axis=1)] + eps)
    order = np.argsort(-loss)
    return [int(i) for i in order if wrong[i]][:n]
