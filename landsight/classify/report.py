"""The classifier report next to the MODEL: JSON (everything), PNG figures and one self-contained HTML page."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from landsight.imagery.bands import BandSpec
from landsight.outputs import atomic_path, check_output
from landsight.report.files import write_json as write_json_file
from landsight.report.html import Section, write_page
from landsight.report.schema import HEADER_KEYS, ReportHeader, with_header


@dataclasses.dataclass(frozen=True)
class ReportPaths:
    """Files written next to MODEL.pt: MODEL-report.html/json, figures, the split and the training history."""

    html: Path
    json: Path
    confusion: Path
    pr: Path
    errors: Path
    candidates: Path
    split: Path
    history: Path

    @classmethod
    def for_model(cls, model: str | Path) -> ReportPaths:
        """Paths derived from the model path (its name without suffix + "-report.html", ...)."""
        stem = Path(model).with_suffix("")
        return cls(*(stem.with_name(f"{stem.name}-{name}") for name in (
            "report.html", "report.json", "confusion.png", "pr.png", "errors.png", "candidates.png", "split.json",
            "history.csv")))

    def all(self) -> list[Path]:
        """Every path."""
        return [getattr(self, f.name) for f in dataclasses.fields(self)]

    def check(self, overwrite: bool) -> None:
        """Refuse existing report files unless `overwrite`."""
        for path in self.all():
            check_output(path, overwrite)


def _save(fig: Any, path: Path) -> None:
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: Path, title: str) -> None:
    """Confusion matrix counts with row-normalised colours (rows = truth)."""
    cm = np.asarray(matrix, dtype=float)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = 2.5 + 0.6 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(cm):
        ax.text(j, i, f"{int(count)}", ha="center", va="center", color="white" if rows[i, j] > 0.5 else "black")
    ax.set(xticks=range(len(classes)), yticks=range(len(classes)), xlabel="predicted", ylabel="truth", title=title)
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    _save(fig, path)


def plot_per_class(per_class: dict[str, dict[str, Any]], path: Path, title: str) -> None:
    """Precision, recall and F1 per class as grouped bars (used for multi-label models)."""
    names = list(per_class)
    fig, ax = plt.subplots(figsize=(max(5, 0.9 * len(names) + 2), 4))
    for offset, key in zip((-0.25, 0, 0.25), ("precision", "recall", "f1"), strict=True):
        ax.bar(np.arange(len(names)) + offset, [per_class[n][key] or 0 for n in names], width=0.25, label=key)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([n[:28] for n in names], rotation=45, ha="right", fontsize="small")
    ax.set(ylim=(0, 1), title=title)
    ax.legend()
    _save(fig, path)


def plot_pr(pr: dict[str, list[dict[str, Any]]], path: Path) -> None:
    """Precision against recall over the decision thresholds, one line per class."""
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, rows in pr.items():
        points = [(r["recall"], r["precision"]) for r in rows if r["recall"] is not None and r["precision"] is not None]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=name[:28])
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.02), ylim=(0, 1.02),
           title="test precision / recall at thresholds 0.1 ... 0.9")
    ax.legend(fontsize="small")
    _save(fig, path)


def plot_candidates(history: Sequence[dict[str, Any]], path: Path) -> None:
    """Validation macro F1 per epoch of every candidate tried."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name in dict.fromkeys(r["candidate"] for r in history):
        rows = [r for r in history if r["candidate"] == name]
        ax.plot([r["epoch"] for r in rows], [r["val_macro_f1"] for r in rows], marker=".", label=name)
    ax.set(xlabel="epoch", ylabel="validation macro F1", ylim=(0, 1.02), title="candidates")
    ax.legend(fontsize="small")
    _save(fig, path)


def rgb_preview(chip: np.ndarray, bands: BandSpec) -> np.ndarray:
    """(H, W, 3) in [0, 1]: the red/green/blue bands when named so, else the first three (or one as grey),
    stretched 2-98 % per band."""
    names = [n.lower() for n in bands.names]
    index = [names.index(n) for n in ("red", "green", "blue")] if {"red", "green", "blue"} <= set(names) else (
        [0, 1, 2] if chip.shape[0] >= 3 else [0, 0, 0])
    out = np.zeros((*chip.shape[1:], 3))
    for k, band in enumerate(index):
        values = np.nan_to_num(chip[band].astype(np.float64), nan=float(np.nanmean(chip[band])))
        lo, hi = np.percentile(values, [2, 98])
        out[..., k] = np.clip((values - lo) / max(hi - lo, 1e-9), 0, 1)
    return out


def plot_gallery(chips: Sequence[np.ndarray], captions: Sequence[str], bands: BandSpec, path: Path,
                 title: str) -> None:
    """A grid of chips with captions (e.g. the worst test errors)."""
    n = max(1, len(chips))
    cols = min(6, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, chip, caption in zip(axes.ravel(), chips, captions, strict=False):
        ax.imshow(rgb_preview(chip, bands), interpolation="nearest")
        ax.set_title(caption, fontsize=7)
    if not chips:
        axes[0, 0].text(0.5, 0.5, "no errors on the test split", ha="center", va="center")
    fig.suptitle(title)
    _save(fig, path)


def write_json(report: dict[str, Any], path: Path) -> dict[str, Any]:
    """Write the report as JSON under a new "landsight-classifier" header (replacing an older file and any header
    `report` carries; values JSON lacks become strings); returns what was written."""
    body = {k: v for k, v in report.items() if k not in HEADER_KEYS}
    data = with_header(ReportHeader.new("classifier"), json.loads(json.dumps(body, default=str)))
    write_json_file(path, data)
    return data


def _fmt(value: Any) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def _score_tables(test: dict[str, Any]) -> tuple[list[list[Any]], list[list[Any]]]:
    """Per-class scores and precision/recall at thresholds, as table rows."""
    per_class = [["class", "precision", "recall", "F1", "test support"]] + [
        [name, _fmt(s["precision"]), _fmt(s["recall"]), _fmt(s["f1"]), s["support"]]
        for name, s in test["per_class"].items()]
    thresholds = [r["threshold"] for r in next(iter(test["pr_at_thresholds"].values()))]
    pr_rows = [["class", *[f"P/R @{t:g}" for t in thresholds]]] + [
        [name, *[f"{_fmt(r['precision'])}/{_fmt(r['recall'])}" for r in rows]]
        for name, rows in test["pr_at_thresholds"].items()]
    return per_class, pr_rows


def _split_section(split: dict[str, Any], data: dict[str, Any]) -> Section:
    counts = split.get("class_counts", {})
    rows = [["split", "chips", *counts]] + [[s, split["sizes"][s], *[counts[c][s] for c in counts]]
                                            for s in ("train", "val", "test")]
    text = (f"Spatially blocked: chips were grouped into blocks {_fmt(split['block_size'])} CRS units across; whole "
            f"blocks went to one split and {split['dropped_overlapping']} training/validation chips overlapping a "
            "held-out chip were dropped." if split["blocked"] else
            "Chips carry no georeference: split chip by chip (stratified).")
    return Section("Split", " ".join([text, *split.get("notes", []), *data.get("warnings", [])]), table=rows)


def _baseline_section(report: dict[str, Any]) -> Section:
    baseline, kept = report.get("baseline"), report.get("kept", "network")
    if not baseline:
        return Section("Baseline", "not computed (a model trained by an older landsight)")
    test = report["network_test"] if kept == "baseline" else report["test"]
    ours, theirs = test.get("mean_f1"), baseline["test"].get("mean_f1")
    if ours is None or theirs is None:
        verdict = ""
    elif theirs >= ours - 0.01:
        verdict = (" It scores about as well as the network or better: on this data the network adds nothing "
                   "measurable over the bands' brightness statistics.")
    else:
        verdict = f" The network is better by {ours - theirs:.3f} macro F1."
    rows = [["class", "network F1", "baseline F1"]] + [
        [name, _fmt(scores["f1"]), _fmt(baseline["test"]["per_class"][name]["f1"])]
        for name, scores in test["per_class"].items()]
    return Section("Baseline", f"A simple reference model, {baseline['model']}, L2 penalty {baseline['penalty']:g} "
                   f"chosen on validation loss, decided like the network. Test macro F1 {_fmt(theirs)} against the "
                   f"network's {_fmt(ours)}.{verdict}{_kept_sentence(baseline, report, kept)}", table=rows)


def _kept_sentence(baseline: dict[str, Any], report: dict[str, Any], kept: str) -> str:
    """Which of the two the MODEL file holds, and why (validation macro F1, never the test)."""
    if "val_macro_f1" not in baseline:
        return ""
    return (f" On validation the baseline scored {_fmt(baseline['val_macro_f1'])} macro F1 and the network "
            f"{_fmt(report['chosen']['val_macro_f1'])}, so the MODEL file holds the {kept}.")


def _candidates_section(report: dict[str, Any], paths: ReportPaths) -> Section:
    rows = [["candidate", "val macro F1", "val loss", "best epoch", "epochs", "seconds", "stopped"]] + [
        [r["candidate"], _fmt(r["val_macro_f1"]), _fmt(r["val_loss"]), r["best_epoch"], r["epochs"], r["seconds"],
         r["stopped"]] for r in report["candidates"]]
    skipped = "; ".join(f"{s['candidate']} skipped (needs ~{s['needs_s']} s, {s['left_s']} s left)"
                        for s in report.get("skipped", []))
    figures = [(paths.candidates, "validation macro F1 per epoch")] if paths.candidates.exists() else []
    return Section(f"Candidates tried (budget {report['budget_s']:.0f} s, used {report['elapsed_s']:.0f} s)",
                   skipped, table=rows, figures=figures)


def _sections(report: dict[str, Any], paths: ReportPaths) -> list[Section]:
    test = report["test"]
    per_class, pr_rows = _score_tables(test)
    figures = [(p, c) for p, c in ((paths.confusion, "test confusion matrix" if test.get("confusion_matrix") else
                                    "test precision / recall / F1 per class"),
                                   (paths.pr, "precision/recall at thresholds")) if p.exists()]
    gallery = [(paths.errors, "worst test errors (truth -> predicted, probability)")] if paths.errors.exists() else []
    similarity = report.get("similarity") or {}
    k = similarity.get("k", 5)
    accuracy = f", accuracy {_fmt(test['accuracy'])}" if test.get("accuracy") is not None else ""
    tta = ", probabilities averaged over four flips as at inference" if report.get("tta") else ""
    decision = test.get("decision") or {}
    if decision.get("positive"):
        accuracy += (f"; a chip is {decision['positive']} when its probability reaches {decision['threshold']:g} "
                     "(the table below shows other thresholds)")
    return [
        Section("Result", f"Chosen on validation: {report['chosen']['candidate']}. Evaluated once on the untouched "
                f"test split ({test['chips']} chips{tta}): macro F1 {_fmt(test.get('mean_f1'))}{accuracy}."),
        Section("Test scores per class", table=per_class, figures=figures),
        Section("Precision / recall at thresholds (one class against the rest)", table=pr_rows),
        _baseline_section(report),
        _split_section(report["split"], report.get("data", {})),
        _candidates_section(report, paths),
        Section("Worst errors", "" if gallery else "gallery not available (re-run training to regenerate it)",
                figures=gallery),
        Section("Similarity search", f"Precision@{k} of test chips queried against all other chips (share of the "
                f"top {k} with the query's class): {_fmt(similarity.get('precision_at_k'))} over "
                f"{similarity.get('queries', 0)} queries." if similarity else "not computed"),
        Section("Details", pre=json.dumps({key: report[key] for key in ("model", "data", "bands", "normalization",
                                                                       "epoch_seconds") if key in report}, indent=1)),
    ]


def write_html(report: dict[str, Any], paths: ReportPaths) -> None:
    """The self-contained HTML page from the report dict and the PNGs present."""
    title = f"Classifier report: {Path(report['model']).name}"
    intro = (f"{len(report['classes'])} classes ({', '.join(report['classes'])}), "
             f"{'multi-label' if report['multi_label'] else 'single-label'}; bands {', '.join(report['bands'])}.")
    write_page(paths.html, title, intro, _sections(report, paths))


def write_figures(report: dict[str, Any], paths: ReportPaths) -> None:
    """Confusion (or per-class bars), PR and candidates PNGs from the report dict."""
    test = report["test"]
    if test.get("confusion_matrix"):
        plot_confusion(test["confusion_matrix"], report["classes"], paths.confusion, "test split")
    else:
        plot_per_class(test["per_class"], paths.confusion, "test split")
    plot_pr(test["pr_at_thresholds"], paths.pr)
    if report.get("history"):
        plot_candidates(report["history"], paths.candidates)
