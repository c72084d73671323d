"""A loaded classification MODEL: raw (C, H, W) arrays in, class probabilities or embeddings out."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from landsight.classify.chips import fit_to_chip
from landsight.classify.evaluate import decide
from landsight.classify.network import embeddings
from landsight.errors import CheckpointError, RasterError
from landsight.imagery.bands import BandSpec, check_units
from landsight.imagery.flips import flip_views
from landsight.imagery.normalize import NORM_MODES, InputStats, normalize
from landsight.models.backends import Backend, TorchBackend, load_backend
from landsight.models.model_file import ModelFile
from landsight.models.onnx_runtime import class_probabilities

log = logging.getLogger(__name__)


class Classifier:
    """Wraps a classification MODEL file; one per process (or pipeline worker).

    Inputs are pixel values of the model's bands in its units (`bands.units`: reflectance for a model trained in
    reflectance, else the raw values scaled like its training image: see `BandSpec.physical`); each image is resized
    to the chip size, or cut into chip-size tiles when it is more than twice as large (per-tile results are returned
    by `tile_probabilities`). Models trained by `train_classifier` average their probabilities over four flips
    (`options["tta"]`).
    """

    def __init__(self, model_file: ModelFile, device: str = "auto", batch_size: int = 64,
                 backend: Backend | None = None) -> None:
        self.model_file = model_file
        self.backend = backend if backend is not None else TorchBackend(model_file, device)
        self.batch_size = batch_size
        options = model_file.options
        self.multi_label = bool(options.get("multi_label", False))
        self.tta = bool(options.get("tta", False))
        self.mode, self.threshold, self.positive, self.input_stats = _decision_options(model_file)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> Classifier:
        """A classification MODEL file on `device`, or its ONNX export (`.onnx`) on ONNX Runtime."""
        model_file, backend = load_backend(path, device, task="classification")
        return cls(model_file, device, backend=backend)

    @property
    def bands(self) -> BandSpec:
        """The bands the model reads, in order."""
        return self.model_file.bands

    @property
    def classes(self) -> list[str]:
        """Class names in output order."""
        return self.model_file.classes.names

    @property
    def chip_size(self) -> int:
        """Side of the model's input chips in pixels."""
        return self.model_file.chip_size

    def _tiles(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """All chips to run (M, C, S, S) raw (NaN and +/-Inf are nodata: NaN) and the image index of each."""
        chips, owner = [], []
        for i, image in enumerate(images):
            if image.ndim != 3 or image.shape[0] != self.bands.count:
                raise RasterError(f"input {i} has shape {tuple(image.shape)}; the model reads (bands, height, width) "
                                  f"arrays with {self.bands.count} band(s) {list(self.bands.names)}")
            raw = image.astype(np.float32)
            tiles = fit_to_chip(np.where(np.isfinite(raw), raw, np.float32(np.nan)), self.chip_size)
            chips += tiles
            owner += [i] * len(tiles)
        return np.stack(chips), np.asarray(owner)

    def _check_inputs(self, raw: np.ndarray) -> None:
        check_units(self.bands, None, "the input", raw)
        if self.input_stats is not None:
            message = self.input_stats.warning(raw, self.bands.names, self.mode)
            if message:
                log.warning(message)

    def _run(self, raw: np.ndarray, embed: bool) -> np.ndarray:
        self._check_inputs(raw)
        x = normalize(raw, self.mode, self.model_file.normalization)
        parts = []
        for start in range(0, len(x), self.batch_size):
            chunk = x[start:start + self.batch_size]
            if embed:
                parts.append(self._embeddings(chunk))
                continue
            views = flip_views(chunk) if self.tta else [chunk]
            parts.append(np.mean([class_probabilities(self.backend.logits(v), self.multi_label) for v in views],
                                 axis=0))
        return np.concatenate(parts)

    @torch.inference_mode()
    def _embeddings(self, chunk: np.ndarray) -> np.ndarray:
        if not isinstance(self.backend, TorchBackend):
            raise CheckpointError("embeddings come from the PyTorch network: use the MODEL file, not its ONNX export")
        x = torch.from_numpy(chunk).to(self.backend.device)
        return embeddings(self.backend.model, x).cpu().numpy()

    def tile_probabilities(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Per image, (tiles, classes) probabilities (one row unless the image was tiled)."""
        if not len(images):
            return []
        raw, owner = self._tiles(images)
        probs = self._run(raw, embed=False)
        return [probs[owner == i] for i in range(len(images))]

    def probabilities(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, classes) probabilities; a tiled image gets the mean over its tiles."""
        if not len(images):
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return np.stack([p.mean(axis=0) for p in self.tile_probabilities(images)])

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) L2-normalised backbone embeddings; a tiled image gets its tiles' mean (renormalised)."""
        raw, owner = self._tiles(images)
        vectors = self._run(raw, embed=True)
        out = np.stack([vectors[owner == i].mean(axis=0) for i in range(len(images))])
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)

    def decide(self, probs: np.ndarray) -> list[list[str]]:
        """Class names per row: every class at or above the threshold (multi-label), else the most probable one, or
        the positive class (a gate's "cloudy") whenever it reaches the threshold chosen on validation."""
        decided = decide(probs, self.multi_label, self.threshold, self.positive)
        return [[c for c, d in zip(self.classes, row, strict=True) if d] for row in decided]


def _decision_options(model_file: ModelFile) -> tuple[str, float, int | None, InputStats | None]:
    """(normalization mode, threshold, positive class index, input statistics) from a model file's options; damaged
    values raise CheckpointError."""
    options = model_file.options
    fix = f"the model file {model_file.sha256[:12]} has damaged 'options'"
    try:
        mode, threshold = str(options.get("normalization_mode", "dataset")), float(options.get("threshold", 0.5))
        positive = options.get("positive_class")
        stats = options.get("input_stats")
        decision = (mode, threshold, model_file.classes.names.index(positive) if positive else None,
                    InputStats.from_dict(stats) if stats else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{fix} ({type(exc).__name__}: {exc}); train it again with `landsight classify "
                              "train`") from exc
    if mode not in NORM_MODES or not 0 <= threshold <= 1:
        raise CheckpointError(f"{fix}: normalization mode {mode!r}, threshold {threshold}; train it again with "
                              "`landsight classify train`")
    return decision
