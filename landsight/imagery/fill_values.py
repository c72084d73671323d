"""Undeclared nodata: a common fill value (-32768, -9999, ...) that covers part of a band and lies far outside the
band's other values, while the raster does not declare it as nodata. Left in, it dominates the band's statistics."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

FILL_VALUES = (-3.4028234663852886e38, -99999.0, -32768.0, -32767.0, -9999.0, 32767.0, 65535.0)
MIN_SHARE = 0.001
"""A fill value is reported when it covers at least this share of a band's valid pixels."""


class FillValueCheck:
    """Counts FILL_VALUES per band and the range of the other values, over pixel batches (streaming)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        self.counts = np.zeros((len(names), len(FILL_VALUES)), dtype=np.int64)
        self.valid = np.zeros(len(names), dtype=np.int64)
        self.low = np.full(len(names), np.inf)
        self.high = np.full(len(names), -np.inf)

    def update(self, pixels: np.ndarray) -> np.ndarray:
        """Add (C, ...) pixel values of the bands (NaN and +/-Inf = nodata, ignored); returns (C, N) bool: where the
        flattened pixels hold one of FILL_VALUES."""
        pixels = np.asarray(pixels, dtype=np.float64).reshape(len(self.names), -1)
        other = np.isfinite(pixels)
        self.valid += other.sum(axis=1)
        for k, value in enumerate(FILL_VALUES):
            is_fill = pixels == value
            self.counts[:, k] += is_fill.sum(axis=1)
            other &= ~is_fill
        self.low = np.minimum(self.low, np.where(other, pixels, np.inf).min(axis=1, initial=np.inf))
        self.high = np.maximum(self.high, np.where(other, pixels, -np.inf).max(axis=1, initial=-np.inf))
        return np.isfinite(pixels) & ~other

    def found(self) -> list[tuple[int, int, float]]:
        """(band, index into FILL_VALUES, share of the band's valid pixels) of every undeclared fill value: one
        covering at least MIN_SHARE of the band and lying more than the band's range away from its other values."""
        hits = []
        for band in range(len(self.names)):
            width = max(self.high[band] - self.low[band], 1.0) if np.isfinite(self.low[band]) else np.inf
            for k, value in enumerate(FILL_VALUES):
                share = self.counts[band, k] / max(self.valid[band], 1)
                outside = not np.isfinite(width) or value < self.low[band] - width or value > self.high[band] + width
                if share >= MIN_SHARE and outside:
                    hits.append((band, k, float(share)))
        return hits

    def fill_values(self) -> tuple[float | None, ...]:
        """Per band, its most frequent undeclared fill value (see `found`), or None."""
        best: dict[int, tuple[float, float]] = {}
        for band, k, share in self.found():
            if share > best.get(band, (0.0, 0.0))[0]:
                best[band] = (share, FILL_VALUES[k])
        return tuple(best[b][1] if b in best else None for b in range(len(self.names)))

    def describe(self, band: int, k: int, share: float, source: str) -> str:
        """'band NAME of SOURCE: S % of the pixels are V, far outside its other values (LOW to HIGH)'."""
        return (f"band {self.names[band]!r} of {source}: {100 * share:.1f} % of the pixels are {FILL_VALUES[k]:g}, "
                f"far outside its other values ({self.low[band]:g} to {self.high[band]:g})")

    def warnings(self, source: str) -> list[str]:
        """One message per undeclared fill value that will be used as a measurement, naming its share and the fix."""
        return [f"{self.describe(band, k, share, source)}; this looks like a nodata "
                f"value the file does not declare, and it will be used as a measurement. Declare it (e.g. "
                f"`rio edit-info --nodata {FILL_VALUES[k]:g} FILE` on a copy) or leave the band out with `bands`"
                for band, k, share in self.found()]
