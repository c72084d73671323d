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

    def update(self, pixels: np.ndarray) -> None:
        """Add (C, ...) pixel values of the bands (NaN and +/-Inf = nodata, ignored)."""
        pixels = np.asarray(pixels, dtype=np.float64).reshape(len(self.names), -1)
        other = np.isfinite(pixels)
        self.valid += other.sum(axis=1)
        for k, value in enumerate(FILL_VALUES):
            is_fill = pixels == value
            self.counts[:, k] += is_fill.sum(axis=1)
            other &= ~is_fill
        self.low = np.minimum(self.low, np.where(other, pixels, np.inf).min(axis=1, initial=np.inf))
        self.high = np.maximum(self.high, np.where(other, pixels, -np.inf).max(axis=1, initial=-np.inf))

    def warnings(self, source: str) -> list[str]:
        """One message per band holding an undeclared fill value, naming the value, its share and the fix."""
        found = []
        for band, name in enumerate(self.names):
            width = max(self.high[band] - self.low[band], 1.0) if np.isfinite(self.low[band]) else np.inf
            for k, value in enumerate(FILL_VALUES):
                share = self.counts[band, k] / max(self.valid[band], 1)
                outside = not np.isfinite(width) or value < self.low[band] - width or value > self.high[band] + width
                if share >= MIN_SHARE and outside:
                    found.append(
                        f"band {name!r} of {source}: {100 * share:.1f} % of the pixels are {value:g}, far outside "
                        f"its other values ({self.low[band]:g} to {self.high[band]:g}); this looks like a nodata "
                        f"value the file does not declare, and it will be used as a measurement. Declare it (e.g. "
                        f"`rio edit-info --nodata {value:g} FILE` on a copy) or leave the band out with `bands`")
        return found
