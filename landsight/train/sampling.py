"""Where training chips come from when labels are sparse: from the chip positions that hold labelled pixels, each
class drawn alike (a uniform draw over a mostly unlabelled scene would mostly teach nothing)."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from landsight.imagery.io import open_raster
from landsight.imagery.windows import Box, Split, block_windows, box_window
from landsight.labels.classes import IGNORE_VALUE

SPARSE_SHARE = 0.5
"""Labels are sparse when they cover less than this share of the training region's pixels."""

CHIP_CELLS = 8
"""Chip positions step by chip / CHIP_CELLS px (see `train_positions`): label counts are kept per such cell."""


def labelled_share(mask: str, region: Box) -> float:
    """Share of `region`'s pixels that carry a label in `mask` (not IGNORE_VALUE), read by 512 px windows."""
    labelled = 0
    with open_raster(mask) as src:
        for window in block_windows(box_window(region), 512):
            labelled += int((src.read(1, window=window) != IGNORE_VALUE).sum())
    col0, row0, col1, row1 = region
    return labelled / max(1, (col1 - col0) * (row1 - row0))


def class_positions(mask: str, split: Split, positions: Sequence[Box], index_lut: np.ndarray,
                    num_classes: int) -> list[np.ndarray]:
    """Per class channel, the indexes into `positions` of the chips that hold at least one training pixel of that
    class (outside the validation blocks). Counts are kept per chip/8 cell, so memory grows with the region's area
    divided by the cell area, and the mask is read once by windows."""
    col0, row0, col1, row1 = split.region
    step = split.chip // CHIP_CELLS
    cells = np.zeros((num_classes, -(-(row1 - row0) // step), -(-(col1 - col0) // step)), dtype=np.int64)
    block = step * max(1, 512 // step)
    with open_raster(mask) as src:
        for window in block_windows(box_window(split.region), block):
            channels = index_lut[src.read(1, window=window)]
            channels[~split.outside_validation(window)] = IGNORE_VALUE
            h, w = channels.shape
            padded = np.full((-(-h // step) * step, -(-w // step) * step), IGNORE_VALUE, dtype=channels.dtype)
            padded[:h, :w] = channels
            r, c = (int(window.row_off) - row0) // step, (int(window.col_off) - col0) // step
            for k in range(num_classes):
                per_cell = (padded == k).reshape(padded.shape[0] // step, step, -1, step).sum(axis=(1, 3))
                cells[k, r:r + per_cell.shape[0], c:c + per_cell.shape[1]] = per_cell
    summed = np.pad(cells.cumsum(axis=1).cumsum(axis=2), ((0, 0), (1, 0), (1, 0)))
    boxes = np.asarray(positions, dtype=np.int64).reshape(-1, 4)
    r0, c0 = (boxes[:, 1] - row0) // step, (boxes[:, 0] - col0) // step
    r1, c1 = np.minimum(r0 + CHIP_CELLS, cells.shape[1]), np.minimum(c0 + CHIP_CELLS, cells.shape[2])
    inside = summed[:, r1, c1] - summed[:, r0, c1] - summed[:, r1, c0] + summed[:, r0, c0]
    return [np.flatnonzero(inside[k] > 0) for k in range(num_classes)]


def draw_labelled_chips(by_class: Sequence[Sequence[np.ndarray]], positions: Sequence[Sequence[Box]], n: int,
                        rng: random.Random) -> list[tuple[int, Box]]:
    """`n` (pair index, chip box): each draw picks a class uniformly among those with a chip, then a pair in
    proportion to its chips of that class, then one of them."""
    classes = [k for k in range(len(by_class[0])) if any(len(pair[k]) for pair in by_class)]
    chips = []
    for _ in range(n):
        k = rng.choice(classes)
        i = rng.choices(range(len(by_class)), weights=[len(pair[k]) for pair in by_class])[0]
        chips.append((i, positions[i][int(by_class[i][k][rng.randrange(len(by_class[i][k]))])]))
    return chips
