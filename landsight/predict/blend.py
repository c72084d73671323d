"""Blend overlapping window predictions into full-width strips and hand finished rows out (pure numpy)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from rasterio.windows import Window

BLEND_VERSION = 1
"""Version of the window grid (`landsight.imagery.windows.aligned_window_rows`) and of the blending here
(`blend_weights`, `StripBlender`). Bump it with any change that can change a predicted pixel: completion markers
carry it, so outputs of the old grid or blend are recomputed instead of reused."""


def blend_weights(height: int, width: int, overlap: int) -> np.ndarray:
    """(H, W) float32 weights that fall quadratically to near zero over `overlap` px at each edge.

    Where windows overlap, each pixel is dominated by the window whose centre is nearer, so no seam appears at
    window edges. Predictions near a window edge lack context (the network sees padding there), so their weight
    falls faster than linearly: on the Atlanta mosaic this cut the pixels that differ from one whole-image pass
    by a third (1,267 to 849 of 2.16 M).
    Weights stay positive so a pixel covered by one window only keeps its value.
    """
    def ramp(n: int) -> np.ndarray:
        if overlap <= 0:
            return np.ones(n, dtype=np.float32)
        i = np.arange(n, dtype=np.float32)
        return np.clip(np.minimum(i + 0.5, n - i - 0.5) / overlap, 1e-3, 1.0) ** 2

    return np.outer(ramp(height), ramp(width)).astype(np.float32)


class StripBlender:
    """Accumulates weighted class scores for one row of windows at a time over the raster's full width.

    Memory: (classes + 1) x window x width float32, independent of the raster height.
    """

    def __init__(self, width: int, height: int, window: int, num_classes: int, overlap: int) -> None:
        self.width, self.height, self.overlap = width, height, overlap
        self.top = 0
        rows = min(window, height)
        self.scores = np.zeros((num_classes, rows, width), dtype=np.float32)
        self.weight = np.zeros((rows, width), dtype=np.float32)
        self._weights: dict[tuple[int, int], np.ndarray] = {}

    def add(self, window: Window, probabilities: np.ndarray) -> None:
        """Add (C, h, w) class probabilities for `window` (which must start at or below `top`)."""
        r0 = int(window.row_off) - self.top
        c0 = int(window.col_off)
        h, w = probabilities.shape[1:]
        if (h, w) not in self._weights:
            self._weights[(h, w)] = blend_weights(h, w, self.overlap)
        weights = self._weights[(h, w)]
        self.scores[:, r0:r0 + h, c0:c0 + w] += probabilities * weights
        self.weight[r0:r0 + h, c0:c0 + w] += weights

    def flush(self, until_row: int, block: int = 4096) -> Iterator[tuple[Window, np.ndarray]]:
        """Yield (window, (C, rows, cols) blended probabilities) for finished rows [top, until_row), in column
        blocks of at most `block` px so that temporaries stay small on wide rasters."""
        n = min(until_row, self.height) - self.top
        if n <= 0:
            return
        for c0 in range(0, self.width, block):
            c1 = min(c0 + block, self.width)
            blended = self.scores[:, :n, c0:c1] / np.maximum(self.weight[:n, c0:c1], 1e-12)
            yield Window(c0, self.top, c1 - c0, n), blended
        rest = self.weight.shape[0] - n
        for r in range(rest):  # shift unfinished rows up in place, one row at a time (no full-buffer copy)
            self.scores[:, r] = self.scores[:, r + n]
            self.weight[r] = self.weight[r + n]
        self.scores[:, rest:] = 0
        self.weight[rest:] = 0
        self.top += n
