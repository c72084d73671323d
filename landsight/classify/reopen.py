"""Re-open a classifier's report: the JSON next to the MODEL, or rebuilt from what the MODEL file carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from landsight.classify.report import ReportPaths, write_figures, write_html, write_json
from landsight.errors import CheckpointError, ReportError
from landsight.models.model_file import load_model_file
from landsight.report.schema import read_report


def report_from_model(model: str | Path) -> dict[str, Any]:
    """The report dict rebuilt from a classification MODEL file's training and metrics metadata."""
    mf = load_model_file(model, task="classification")
    training, metrics = mf.training, mf.metrics
    if not isinstance(metrics.get("test"), dict):
        raise CheckpointError(f"{model} carries no test evaluation; train it with `landsight classify train`")
    return {
        "model": str(model), "sha256": mf.sha256, "task": mf.task, "classes": mf.classes.names,
        "multi_label": bool(mf.options.get("multi_label")), "bands": list(mf.bands.names),
        "normalization": mf.options.get("normalization_mode"), "preset": mf.options.get("preset"),
        "data": training.get("data", {}), "split": training.get("split", {}),
        "candidates": training.get("candidates", []), "skipped": training.get("skipped", []),
        "chosen": training.get("chosen", {}), "budget_s": training.get("budget_s", 0.0),
        "elapsed_s": training.get("elapsed_s", 0.0), "test": metrics["test"],
        "similarity": metrics.get("similarity"), "worst_errors": metrics.get("worst_errors", []), "history": [],
        "baseline": metrics.get("baseline"),
    }


def reopen_report(model: str | Path) -> tuple[dict[str, Any], Path]:
    """(report dict, HTML path): read MODEL-report.json, or rebuild it from the model file; re-write missing
    figures and the HTML page. The worst-errors gallery needs the training chips and is not rebuilt."""
    paths = ReportPaths.for_model(model)
    if paths.json.exists():
        report = _read_report(paths.json)
    else:
        report = write_json(report_from_model(model), paths.json)
    if not paths.html.exists() or not paths.confusion.exists() or not paths.pr.exists():
        write_figures(report, paths)
        write_html(report, paths)
    return report, paths.html


def _read_report(path: Path) -> dict[str, Any]:
    """A report JSON written by `classify train`; a damaged, old, foreign or newer one raises ReportError."""
    try:
        report = read_report(path, "classifier")
    except ReportError as exc:
        raise ReportError(f"{exc}, or delete it to rebuild it from the model file") from exc
    if not isinstance(report.get("test"), dict):
        raise ReportError(f"{path} is not a classifier report (no test evaluation); delete it to rebuild it from "
                          "the model file")
    return report
