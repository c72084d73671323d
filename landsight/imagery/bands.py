"""Which bands a model reads, in which order, and how their values are normalized."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landsight.errors import RasterError
from landsight.imagery.fill_values import FillValueCheck
from landsight.imagery.io import read_masked

log = logging.getLogger(__name__)

_DEFAULT_NAME = re.compile(r"^b\d+$")


@dataclasses.dataclass(frozen=True)
class BandSpec:
    """Band selection: 1-based `indexes` into the raster and one name per selected band.

    `source_count` is the band count of the raster the selection was made on (0 when unknown).
    """

    indexes: tuple[int, ...]
    names: tuple[str, ...]
    source_count: int = 0

    @property
    def count(self) -> int:
        """Number of bands the model reads."""
        return len(self.indexes)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for model files and provenance tags."""
        return {"indexes": list(self.indexes), "names": list(self.names), "source_count": self.source_count}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BandSpec:
        """Inverse of `to_dict`."""
        return cls(tuple(int(i) for i in data["indexes"]), tuple(str(n) for n in data["names"]),
                   int(data.get("source_count", 0)))


def parse_band_indexes(text: str | None) -> list[int] | None:
    """Parse "1,2,3" into [1, 2, 3]; None stays None (all bands)."""
    if text is None or text == "":
        return None
    try:
        indexes = [int(part) for part in text.split(",")]
    except ValueError as exc:
        raise RasterError(f"`bands` {text!r} is not a comma-separated list of 1-based band numbers, "
                          "e.g. 1,2,3") from exc
    if any(i < 1 for i in indexes):
        raise RasterError(f"`bands` {text!r}: band numbers start at 1")
    return indexes


def band_spec_for(src: DatasetReader, indexes: Sequence[int] | None = None) -> BandSpec:
    """The band spec of `src`: the selected (default all) bands, named by their descriptions or b1, b2..."""
    chosen = tuple(indexes) if indexes else tuple(range(1, src.count + 1))
    for i in chosen:
        if i > src.count:
            raise RasterError(f"band {i} requested but {src.name} has {src.count} band(s); choose from 1..{src.count}")
    names = tuple((src.descriptions[i - 1] or f"b{i}") for i in chosen)
    return BandSpec(chosen, names, src.count)


def check_bands_match(expected: BandSpec, src: DatasetReader, indexes: Sequence[int] | None = None) -> BandSpec:
    """Return the band spec to read from `src` for a model trained on `expected`; raise if they cannot match.

    Without explicit `indexes`, the image must have as many bands as the model's training image had.
    """
    if not indexes and expected.source_count and src.count != expected.source_count:
        raise RasterError(
            f"the model was trained on bands {list(expected.names)} of a {expected.source_count}-band image but "
            f"{src.name} has {src.count} band(s); pass `bands` with {expected.count} band numbers of this image in "
            "the model's order"
        )
    spec = band_spec_for(src, indexes or (expected.indexes if max(expected.indexes) <= src.count else None))
    if spec.count != expected.count:
        raise RasterError(
            f"the model reads {expected.count} band(s) {list(expected.names)} but {src.name} gives {spec.count} "
            f"{list(spec.names)}; pass `bands` with {expected.count} band numbers of this image in the model's order"
        )
    named = [(a, b) for a, b in zip(expected.names, spec.names, strict=True)
             if not _DEFAULT_NAME.match(a) and not _DEFAULT_NAME.match(b)]
    wrong = [(a, b) for a, b in named if a.lower() != b.lower()]
    if wrong:
        raise RasterError(
            f"band names of {src.name} {list(spec.names)} do not match the model's {list(expected.names)}; "
            "pass `bands` to pick the image bands in the model's order"
        )
    return spec


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per-band affine normalization: (value - mean) / std, in the band order of a BandSpec."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def apply(self, image: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Normalize a (C, H, W) array, or a batch of them, to float32 with the band statistics. Non-finite values,
        and every band of pixels outside the (H, W) `valid` mask, become 0 (the band mean), so nodata never reaches a
        model."""
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        out = (image.astype(np.float32) - mean) / std
        keep = np.isfinite(out) if valid is None else valid & np.isfinite(out)
        return np.where(keep, out, np.float32(0)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for model files and provenance tags."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        """Inverse of `to_dict`."""
        return cls(tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]))


def compute_normalization(sources: Iterable[tuple[DatasetReader, Sequence[Window]]], spec: BandSpec) -> Normalization:
    """Streaming per-band mean and std over the valid pixels of the given windows (float64 sums; NaN and +/-Inf values
    left out); logs a warning for a band holding an undeclared nodata value (see `FillValueCheck`).

    Raises:
        RasterError: a band has no valid value, or its statistics are not finite.
    """
    total = np.zeros(spec.count)
    total_sq = np.zeros(spec.count)
    n = np.zeros(spec.count, dtype=np.int64)
    names = []
    for src, windows in sources:
        names.append(str(src.name))
        fills = FillValueCheck(spec.names)
        for window in windows:
            data, valid = read_masked(src, window, list(spec.indexes))
            pixels = data.astype(np.float64)[:, valid.any(axis=0)]
            pixels[~np.isfinite(pixels)] = np.nan
            fills.update(pixels)
            total += np.nansum(pixels, axis=1)
            total_sq += np.nansum(pixels**2, axis=1)
            n += (~np.isnan(pixels)).sum(axis=1)
        for warning in fills.warnings(str(src.name)):
            log.warning(warning)
    empty = [name for name, count in zip(spec.names, n, strict=True) if count == 0]
    if empty:
        raise RasterError(f"band(s) {empty} of {', '.join(names)} have no valid pixel to compute statistics from (all "
                          "nodata, NaN or Inf); check the image's nodata value or leave the band(s) out with `bands`")
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    return checked_normalization(Normalization(tuple(mean.tolist()), tuple(std.tolist())),
                                 [f"{name} of {', '.join(names)}" for name in spec.names])


def checked_normalization(normalization: Normalization, names: Sequence[str]) -> Normalization:
    """`normalization` itself when every mean and std is finite (std > 0); else RasterError naming the band."""
    bad = [name for name, m, s in zip(names, normalization.mean, normalization.std, strict=True)
           if not (np.isfinite(m) and np.isfinite(s) and s > 0)]
    if bad:
        raise RasterError(f"the statistics of band(s) {bad} are not finite (mean {list(normalization.mean)}, std "
                          f"{list(normalization.std)}): values too large or undeclared fill values; declare the "
                          "image's nodata value or leave the band(s) out with `bands`")
    return normalization
