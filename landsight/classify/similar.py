"""Similarity search over chips: embeddings from a classifier's backbone, cosine top-k, precision@k, and an HTML
strip of result thumbnails."""

from __future__ import annotations

import dataclasses
import json
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from rich.progress import Progress

from landsight.classify.chips import resize_chip
from landsight.classify.classifier import Classifier
from landsight.classify.inputs import batched, iter_inputs
from landsight.classify.report import rgb_preview
from landsight.errors import ConfigError
from landsight.imagery.bands import BandSpec
from landsight.outputs import atomic_path, check_output
from landsight.report.html import Section, write_page

THUMB = 48
"""Thumbnail side in pixels stored in the index for result strips."""


@dataclasses.dataclass
class SimilarityIndex:
    """L2-normalised embeddings (N, D) of chips with their ids, known labels and RGB thumbnails."""

    vectors: np.ndarray
    ids: list[str]
    labels: list[str | None]
    thumbnails: np.ndarray
    model: dict[str, Any]

    def __len__(self) -> int:
        return len(self.ids)

    def save(self, path: str | Path, overwrite: bool = False) -> None:
        """Write one compressed .npz file atomically."""
        meta = json.dumps({"format": "landsight-similarity-index", "ids": self.ids, "labels": self.labels,
                           "model": self.model})
        with atomic_path(path, overwrite) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, vectors=self.vectors.astype(np.float32), thumbnails=self.thumbnails,
                                    meta=np.array(meta))

    @classmethod
    def load(cls, path: str | Path) -> SimilarityIndex:
        """Read an index written by `save`; anything else (foreign, truncated, inconsistent) raises ConfigError."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                vectors, thumbnails = data["vectors"], data["thumbnails"]
        except (OSError, KeyError, ValueError, EOFError, TypeError, AttributeError, zipfile.BadZipFile) as exc:
            raise _not_an_index(path, f"{type(exc).__name__}: {exc}") from exc
        problem = _index_problem(meta, vectors, thumbnails)
        if problem:
            raise _not_an_index(path, problem)
        return cls(vectors, meta["ids"], meta["labels"], thumbnails, meta["model"])

    def search(self, vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        """Indexes and cosine similarities of the `k` nearest chips, best first."""
        scores = self.vectors @ vector.astype(np.float32)
        order = np.argsort(-scores, kind="stable")[:k]
        return [(int(i), float(scores[i])) for i in order]


def _not_an_index(path: str | Path, problem: str) -> ConfigError:
    return ConfigError(f"{path} is not a usable landsight similarity index ({problem}); build one with "
                       "`landsight similar index MODEL CHIPS -o INDEX`")


def _index_problem(meta: Any, vectors: np.ndarray, thumbnails: np.ndarray) -> str | None:
    """What is wrong with the parts of a loaded index (None when they fit together)."""
    if not isinstance(meta, dict) or meta.get("format") != "landsight-similarity-index":
        return "no 'landsight-similarity-index' marker"
    ids, labels, model = meta.get("ids"), meta.get("labels"), meta.get("model")
    if not isinstance(ids, list) or not isinstance(labels, list) or not isinstance(model, dict):
        return "its 'ids', 'labels' or 'model' entry is missing or of the wrong type"
    n = len(ids)
    if vectors.ndim != 2 or vectors.dtype.kind != "f" or len(vectors) != n or not np.isfinite(vectors).all():
        return f"'vectors' should be {n} finite embedding rows, found {vectors.dtype} {vectors.shape}"
    if len(labels) != n or thumbnails.shape != (n, THUMB, THUMB, 3) or thumbnails.dtype != np.uint8:
        return f"{len(labels)} labels and thumbnails {thumbnails.dtype} {thumbnails.shape} do not fit {n} chips"
    return None


def thumbnail(chip: np.ndarray, bands: BandSpec) -> np.ndarray:
    """(THUMB, THUMB, 3) uint8 RGB preview of a raw chip."""
    small = resize_chip(chip, THUMB)
    return (rgb_preview(small, bands) * 255).round().astype(np.uint8)


def build_index(classifier: Classifier, inputs: Sequence[str | Path], indexes: Sequence[int] | None = None,
                model_path: str = "") -> SimilarityIndex:
    """Embed every chip of `inputs` (files, folders, rasters) with the classifier's backbone."""
    vectors, ids, labels, thumbs = [], [], [], []
    chips = iter_inputs(inputs, classifier.bands, classifier.chip_size, indexes)
    with Progress(transient=True) as progress:
        task = progress.add_task("embedding chips", total=None)
        for batch in batched(chips, 128):
            vectors.append(classifier.embed([c.data for c in batch]))
            ids += [c.id for c in batch]
            labels += [c.label for c in batch]
            thumbs += [thumbnail(c.data, classifier.bands) for c in batch]
            progress.advance(task, len(batch))
    mf = classifier.model_file
    return SimilarityIndex(np.concatenate(vectors), ids, labels, np.stack(thumbs),
                           {"path": model_path, "sha256": mf.sha256, "backbone": mf.encoder,
                            "chip_size": mf.chip_size, "bands": mf.bands.to_dict()})


def precision_at_k(vectors: np.ndarray, targets: np.ndarray, queries: Sequence[int], k: int = 5) -> float:
    """Mean share of the `k` nearest other chips (cosine) that share a class with the query chip."""
    if not len(queries):
        return float("nan")
    truth = targets > 0.5
    scores = vectors[list(queries)] @ vectors.T
    scores[np.arange(len(queries)), list(queries)] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = [(truth[top[row]] & truth[q]).any(axis=1).mean() for row, q in enumerate(queries)]
    return float(np.mean(hits))


def index_precision(index: SimilarityIndex, k: int = 5) -> tuple[float, int] | None:
    """Leave-one-out precision@k over the labelled chips of an index (None without labels)."""
    known = {i: label for i, label in enumerate(index.labels) if label}
    labelled = list(known)
    names = sorted(set(known.values()))
    if len(names) < 2:
        return None
    targets = np.zeros((len(labelled), len(names)))
    targets[np.arange(len(labelled)), [names.index(label) for label in known.values()]] = 1
    return precision_at_k(index.vectors[labelled], targets, list(range(len(labelled))), k), len(labelled)


def write_strip(index: SimilarityIndex, query: np.ndarray, results: Sequence[tuple[int, float]], query_name: str,
                path: str | Path, overwrite: bool = False) -> None:
    """An HTML page with the query thumbnail and the results' thumbnails, scores and labels in a strip."""
    check_output(path, overwrite)
    n = len(results) + 1
    fig, axes = plt.subplots(1, n, figsize=(1.9 * n, 2.3), squeeze=False)
    axes[0, 0].imshow(query)
    axes[0, 0].set_title("query", fontsize=8)
    for ax, (i, score) in zip(axes[0, 1:], results, strict=True):
        ax.imshow(index.thumbnails[i])
        ax.set_title(f"{score:.3f}\n{index.labels[i] or Path(index.ids[i]).name[-18:]}", fontsize=7)
    for ax in axes[0]:
        ax.set_axis_off()
    fig.tight_layout()
    rows = [["rank", "score", "label", "chip"]] + [[r + 1, f"{s:.4f}", index.labels[i] or "-", index.ids[i]]
                                                   for r, (i, s) in enumerate(results)]
    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "strip.png"
        fig.savefig(png, dpi=100)
        plt.close(fig)
        write_page(path, f"Chips similar to {Path(query_name).name}", f"Index of {len(index)} chips; cosine "
                   f"similarity of {index.model.get('backbone')} embeddings.",
                   [Section("Nearest chips", figures=[(png, "query, then results best first")], table=rows)])
