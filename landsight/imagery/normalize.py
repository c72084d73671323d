"""Band normalization of (N, C, H, W) chip batches: training statistics (default) or per image (sensor /
processing-level independent), and a warning when inputs look unlike the training data. Pure numpy.

Shared by the classifiers (`landsight.classify`) and their ONNX runtime (`landsight.export`)."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from landsight.errors import ConfigError
from landsight.imagery.bands import Normalization, checked_normalization

NormMode = Literal["dataset", "per-image"]
NORM_MODES: tuple[str, ...] = ("dataset", "per-image")

OUTLIER_Z = 4.0
"""Inputs whose band mean lies more than this many training standard deviations (of chip means) away warn."""

REFLECTANCE_SPREAD = 0.1
"""Least spread of chip means, in reflectance, that the warning of a model trained in reflectance assumes: one
training scene under-represents how much land covers differ between scenes and sensors (vegetation NIR alone spans
0.2-0.5), and such a model is meant to run on them; inputs in the wrong units are refused before (see
`landsight.imagery.bands.check_units`)."""


def _nan_stats(values: np.ndarray, axis: Any) -> tuple[np.ndarray, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(values, axis=axis), np.nanstd(values, axis=axis)


def fit_normalization(images: np.ndarray, names: Sequence[str] | None = None) -> Normalization:
    """Per-band mean and std over all valid pixels of (N, C, H, W) raw chips (float64 sums; NaN and +/-Inf are
    nodata); a band without a valid pixel, or with non-finite statistics, raises naming it (`names`, else b1, b2...)."""
    values = images.astype(np.float64).transpose(1, 0, 2, 3).reshape(images.shape[1], -1)
    mean, std = _nan_stats(np.where(np.isfinite(values), values, np.nan), axis=1)
    names = list(names) if names else [f"b{i}" for i in range(1, images.shape[1] + 1)]
    empty = [name for name, m in zip(names, mean, strict=True) if np.isnan(m)]
    if empty:
        raise ConfigError(f"band(s) {empty} have no valid pixel in the training chips (all nodata, NaN or Inf); "
                          "check the nodata value or leave the band(s) out with `bands`")
    std = np.where(std > 1e-6, std, 1.0)
    return checked_normalization(Normalization(tuple(mean.tolist()), tuple(std.tolist())), names)


def normalize(images: np.ndarray, mode: str, normalization: Normalization) -> np.ndarray:
    """(N, C, H, W) raw -> float32 model input; nodata (NaN) becomes 0, the band mean.

    "dataset": (x - training mean) / training std. "per-image": each chip's bands standardized by their own mean and
    std, for models meant to run on other sensors or processing levels (DN vs reflectance).
    """
    if mode == "dataset":
        return normalization.apply(images)  # the one implementation segmentation windows use too
    if mode != "per-image":
        raise ConfigError(f"unknown normalization {mode!r}; choose from {list(NORM_MODES)}")
    mean, std = _nan_stats(images.astype(np.float64), axis=(2, 3))
    std = np.where(std > 1e-6, std, 1.0)
    out = ((images - mean[:, :, None, None]) / std[:, :, None, None]).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


@dataclasses.dataclass(frozen=True)
class InputStats:
    """What training inputs looked like: per band, the mean and std of chip means (the model's units)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def fit(cls, images: np.ndarray, min_std: float = 0.0) -> InputStats:
        """Statistics of (N, C, H, W) training chips (in the model's units); the std of chip means is at least
        `min_std` (e.g. `REFLECTANCE_SPREAD`)."""
        chip_means, _ = _nan_stats(images.astype(np.float64), axis=(2, 3))
        mean, std = _nan_stats(chip_means, axis=0)
        floor = np.maximum(1e-3 * np.maximum(np.abs(mean), 1.0), min_std)
        return cls(tuple(mean.tolist()), tuple(np.maximum(std, floor).tolist()))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for model files."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputStats:
        """Inverse of `to_dict`."""
        return cls(tuple(data["mean"]), tuple(data["std"]))

    def outliers(self, images: np.ndarray) -> np.ndarray:
        """(N, C) z-scores of each input chip's band means against the training chips'."""
        chip_means, _ = _nan_stats(images.astype(np.float64), axis=(2, 3))
        return np.asarray((chip_means - np.asarray(self.mean)) / np.asarray(self.std))

    def warning(self, images: np.ndarray, band_names: tuple[str, ...], mode: str) -> str | None:
        """A message when inputs are far outside the training statistics (None when they look alike)."""
        z = np.nan_to_num(self.outliers(images), nan=0.0)
        far = np.abs(z) > OUTLIER_Z
        if not far.any():
            return None
        worst = np.abs(z).max(axis=0)
        bands = [f"{name} (|z| up to {worst[i]:.0f})" for i, name in enumerate(band_names) if far[:, i].any()]
        fix = ("the model normalizes per image, so check the band order" if mode == "per-image" else
               "check the band order and units (DN vs reflectance), or retrain with `normalization` per-image")
        return (f"{int(far.any(axis=1).sum())} of {len(images)} input(s) lie far outside the training data in "
                f"band(s) {', '.join(bands)}: predictions may be unreliable; {fix}")
