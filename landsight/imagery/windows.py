"""Window grids over a raster: sliding windows with overlap, chip grids, and spatially blocked splits."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np
from rasterio.windows import Window

if TYPE_CHECKING:
    from rasterio.io import DatasetReader

from landsight.errors import ConfigError


def _starts(length: int, size: int, stride: int) -> list[int]:
    """Offsets of windows of `size` every `stride` pixels covering [0, length); the last one ends at `length`."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size, stride))
    starts.append(length - size)
    return starts


def sliding_windows(width: int, height: int, size: int, overlap: int = 0) -> Iterator[Window]:
    """Windows of `size` x `size` px covering the raster, neighbours sharing `overlap` px; row-major order.

    Windows never extend past the raster; when it is smaller than `size` in a dimension the window is clipped.
    """
    if overlap < 0 or overlap >= size:
        raise ConfigError(f"overlap {overlap} px must be >= 0 and smaller than the window size {size} px")
    stride = size - overlap
    for row in _starts(height, size, stride):
        for col in _starts(width, size, stride):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def _aligned_starts(length: int, size: int, stride: int, align: int) -> list[int]:
    """Grid-aligned starts every `stride` px; the last one is the first aligned start whose window reaches the end,
    so it is clipped by less than `align` px (and padded back by as little as a whole-raster pass would be)."""
    if length <= size:
        return [0]
    last = -(-(length - size) // align) * align
    return [*range(0, last, stride), last]


def aligned_window_rows(width: int, height: int, size: int, overlap: int = 0, align: int = 32) -> list[list[Window]]:
    """Rows of `size` px windows whose offsets are multiples of `align` px, clipped at the raster's right and bottom.

    CNNs that downsample by `align` are only shift-equivariant for shifts that are multiples of it, so windows on
    this grid compute the same features as one pass over the whole raster would (up to their borders, where
    overlapping neighbours are blended). The stride is size - overlap rounded down to a multiple of `align`.
    """
    if size % align or overlap < 0 or overlap > size - align:
        raise ConfigError(f"window {size} px must be a multiple of {align} and overlap {overlap} px at most "
                          f"{size - align}")
    stride = (size - overlap) // align * align
    cols = _aligned_starts(width, size, stride, align)
    return [[Window(c, r, min(size, width - c), min(size, height - r)) for c in cols]
            for r in _aligned_starts(height, size, stride, align)]


Box = tuple[int, int, int, int]
"""A pixel rectangle (col0, row0, col1, row1), end-exclusive."""


def box_window(box: Box) -> Window:
    """The rasterio window of a pixel box."""
    col0, row0, col1, row1 = box
    return Window(col0, row0, col1 - col0, row1 - row0)


@dataclasses.dataclass(frozen=True)
class Split:
    """A spatially blocked split of one raster: validation chips on a grid inside `val_boxes`; training chips are
    drawn anywhere in `region` that does not touch a validation box (see `sample_train_windows`)."""

    region: Box
    val_boxes: tuple[Box, ...]
    val: tuple[Window, ...]
    chip: int

    def outside_validation(self, window: Window) -> np.ndarray:
        """(height, width) bool of the pixels of `window` that lie in no validation box."""
        col, row = int(window.col_off), int(window.row_off)
        keep = np.ones((int(window.height), int(window.width)), dtype=bool)
        for col0, row0, col1, row1 in self.val_boxes:
            keep[max(0, row0 - row):max(0, row1 - row), max(0, col0 - col):max(0, col1 - col)] = False
        return keep

    def summary(self) -> str:
        """One line for logs: region, number of validation blocks and chips."""
        col0, row0, col1, row1 = self.region
        return (f"region {col1 - col0}x{row1 - row0} px, {len(self.val_boxes)} validation block(s) "
                f"-> {len(self.val)} validation chip(s) of {self.chip} px")


def check_chip_fits(region: Box, chip: int) -> None:
    """Raise ConfigError when a `chip` x `chip` window does not fit in the pixel box `region`."""
    col0, row0, col1, row1 = region
    if chip > col1 - col0 or chip > row1 - row0:
        raise ConfigError(f"chip size {chip} px is larger than the training area ({col1 - col0} x {row1 - row0} px); "
                          f"pass `chip_size` {max(32, min(col1 - col0, row1 - row0) // 32 * 32)} or smaller")


def blocked_split(width: int, height: int, chip: int, val_fraction: float, seed: int = 0,
                  region: Box | None = None) -> Split:
    """Choose validation blocks of `chip` x `chip` px at random (seeded) until `val_fraction` of the region.

    `region` (pixels) restricts everything to a sub-area, e.g. to keep a held-out part of the image unseen. Training
    chips never overlap a validation block, so neighbouring chips never straddle the split. Time and memory grow
    linearly with the number of blocks.
    """
    region = region or (0, 0, width, height)
    check_chip_fits(region, chip)
    col0, row0, col1, row1 = region
    per_row = (col1 - col0) // chip
    n_blocks = per_row * ((row1 - row0) // chip)
    order = list(range(n_blocks))  # block numbers, row-major: shuffled exactly as the blocks themselves would be
    random.Random(seed).shuffle(order)
    n_val = min(n_blocks - 1, max(1, round(val_fraction * n_blocks))) if val_fraction > 0 else 0
    corners = [(col0 + i % per_row * chip, row0 + i // per_row * chip) for i in sorted(order[:n_val])]
    val_boxes = tuple((c, r, c + chip, r + chip) for c, r in corners)
    val = tuple(Window(c, r, chip, chip) for c, r in corners)
    return Split(region, val_boxes, val, chip)


def _clear_rows(split: Split) -> Iterator[tuple[int, np.ndarray]]:
    """Per row of chip positions (steps of chip/8): its row offset and the column offsets of the positions clear of
    validation boxes. The boxes sit on the chip grid, so a position touches at most 2 x 2 grid cells: one lookup
    per position instead of a comparison with every box."""
    col0, row0, col1, row1 = split.region
    chip, step = split.chip, max(1, split.chip // 8)
    held_out = np.zeros(((row1 - row0) // chip + 1, (col1 - col0) // chip + 1), dtype=bool)
    for c, r, _, _ in split.val_boxes:
        held_out[(r - row0) // chip, (c - col0) // chip] = True
    cols = np.arange(col0, col1 - chip + 1, step)
    first, last = (cols - col0) // chip, (cols - col0 + chip - 1) // chip
    for r in range(row0, row1 - chip + 1, step):
        cells = held_out[(r - row0) // chip] | held_out[(r - row0 + chip - 1) // chip]
        yield r, cols[~(cells[first] | cells[last])]


def train_positions(split: Split) -> list[Box]:
    """Every chip position (1-px steps are too many: steps of chip/8) in the region clear of validation boxes,
    row by row."""
    chip = split.chip
    return [(c, r, c + chip, r + chip) for r, cols in _clear_rows(split) for c in cols.tolist()]


def count_train_positions(split: Split) -> int:
    """`len(train_positions(split))` without listing the positions."""
    return sum(len(cols) for _, cols in _clear_rows(split))


def sample_train_windows(positions: Sequence[Box], n: int, rng: random.Random) -> list[Window]:
    """`n` training windows drawn at random from `positions`."""
    if not positions:
        raise ConfigError("no training chip fits outside the validation blocks; use a smaller `chip_size` or "
                          "`val_fraction` 0")
    return [box_window(b) for b in rng.choices(positions, k=n)]


def block_windows(region: Window, size: int) -> Iterator[Window]:
    """Disjoint windows of at most `size` x `size` px tiling `region`, row by row.

    Unlike `sliding_windows`, whose last window is shifted back to stay full size (and so overlaps its neighbour),
    the last windows here are cut short: every pixel is visited exactly once, as counting and polygonizing need.

    >>> [tuple(w.flatten()) for w in block_windows(Window(0, 0, 5, 3), 4)]
    [(0, 0, 4, 3), (4, 0, 1, 3)]
    """
    if size < 1:
        raise ConfigError(f"block size {size} px must be at least 1")
    col0, row0 = int(region.col_off), int(region.row_off)
    col1, row1 = col0 + int(region.width), row0 + int(region.height)
    for row in range(row0, row1, size):
        for col in range(col0, col1, size):
            yield Window(col, row, min(size, col1 - col), min(size, row1 - row))


def all_windows(src: DatasetReader, block: int) -> Iterator[Window]:
    """Disjoint windows of at most `block` px covering `src` once (every pixel counted exactly once)."""
    yield from block_windows(Window(0, 0, src.width, src.height), block)
