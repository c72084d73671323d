"""Window grids and the blocked split: coverage, bounds, and no train/validation overlap."""

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from landsight.errors import ConfigError
from landsight.imagery.windows import (
    aligned_window_rows,
    blocked_split,
    count_train_positions,
    sample_train_windows,
    sliding_windows,
    train_positions,
)


@given(st.integers(1, 700), st.integers(1, 700), st.sampled_from([32, 64, 128, 256]), st.integers(0, 31))
@settings(max_examples=60, deadline=None)
def test_sliding_windows_cover_raster_inside_bounds(width, height, size, overlap):
    covered = np.zeros((height, width), dtype=bool)
    for w in sliding_windows(width, height, size, overlap):
        assert w.col_off >= 0 and w.row_off >= 0
        assert w.col_off + w.width <= width and w.row_off + w.height <= height
        assert w.width == min(size, width) and w.height == min(size, height)
        covered[int(w.row_off):int(w.row_off + w.height), int(w.col_off):int(w.col_off + w.width)] = True
    assert covered.all()


@given(st.integers(1, 2000), st.integers(1, 2000), st.sampled_from([64, 256, 1024]), st.sampled_from([0, 32, 64]))
@settings(max_examples=60, deadline=None)
def test_aligned_windows_sit_on_the_32_px_grid_and_cover_everything(width, height, size, overlap):
    overlap = min(overlap, size // 2)
    rows = aligned_window_rows(width, height, size, overlap)
    covered = np.zeros((height, width), dtype=bool)
    for row in rows:
        assert len({int(w.row_off) for w in row}) == 1
        for w in row:
            assert w.col_off % 32 == 0 and w.row_off % 32 == 0
            assert w.col_off + w.width <= width and w.row_off + w.height <= height
            covered[int(w.row_off):int(w.row_off + w.height), int(w.col_off):int(w.col_off + w.width)] = True
    assert covered.all()
    assert [int(r[0].row_off) for r in rows] == sorted({int(r[0].row_off) for r in rows})


def test_overlap_must_be_smaller_than_window():
    with pytest.raises(ConfigError, match="overlap 256"):
        list(sliding_windows(100, 100, 256, 256))


@given(st.integers(256, 1200), st.integers(256, 1200), st.floats(0.05, 0.5), st.integers(0, 5))
@settings(max_examples=30, deadline=None)
def test_blocked_split_never_overlaps(width, height, fraction, seed):
    split = blocked_split(width, height, 128, fraction, seed)
    positions = train_positions(split)
    for c0, r0, c1, r1 in positions:
        for v in split.val_boxes:
            assert c0 >= v[2] or c1 <= v[0] or r0 >= v[3] or r1 <= v[1]
    assert all(w.width == 128 and w.height == 128 for w in split.val)


def reference_split(width, height, chip, val_fraction, seed, region):
    """The first, quadratic implementation: a list of every block shuffled, each position tested against every
    validation box. Kept here as the oracle: training must stay bit-identical."""
    col0, row0, col1, row1 = region or (0, 0, width, height)
    blocks = [(c, r, c + chip, r + chip) for r in range(row0, row1 - chip + 1, chip)
              for c in range(col0, col1 - chip + 1, chip)]
    random.Random(seed).shuffle(blocks)
    n_val = min(len(blocks) - 1, max(1, round(val_fraction * len(blocks)))) if val_fraction > 0 else 0
    val = sorted(blocks[:n_val], key=lambda b: (b[1], b[0]))
    step = max(1, chip // 8)
    positions = [(c, r, c + chip, r + chip) for r in range(row0, row1 - chip + 1, step)
                 for c in range(col0, col1 - chip + 1, step)]
    return val, [p for p in positions if all(p[0] >= v[2] or p[2] <= v[0] or p[1] >= v[3] or p[3] <= v[1]
                                             for v in val)]


@given(st.integers(100, 400), st.integers(100, 400), st.sampled_from([24, 27, 32, 40, 64, 100]),
       st.sampled_from([0.0, 0.1, 0.3, 0.9]), st.integers(0, 3), st.tuples(*[st.floats(0, 1)] * 4))
@settings(max_examples=80, deadline=None)
def test_split_and_positions_match_the_reference(width, height, chip, fraction, seed, corners):
    a, b = sorted(int(f * width) for f in corners[:2]), sorted(int(f * height) for f in corners[2:])
    region = (a[0], b[0], a[1], b[1]) if a[1] - a[0] >= chip and b[1] - b[0] >= chip else None
    split = blocked_split(width, height, chip, fraction, seed, region)
    val, positions = reference_split(width, height, chip, fraction, seed, region)
    assert list(split.val_boxes) == val and [tuple(w.flatten()) for w in split.val] == [
        (v[0], v[1], chip, chip) for v in val]
    assert train_positions(split) == positions and count_train_positions(split) == len(positions)


def test_positions_of_a_huge_raster_are_counted_quickly():
    """100,000 px square, 256 px chips: 9.7 million positions, 30,420 validation blocks (pairwise: 3e11 tests)."""
    split = blocked_split(100_000, 100_000, 256, 0.2)
    assert len(split.val) == 30_420
    assert count_train_positions(split) == 4_543_331


def test_blocked_split_respects_region_and_chip_size():
    split = blocked_split(600, 900, 128, 0.2, 0, region=(0, 0, 400, 900))
    assert all(b[2] <= 400 for b in split.val_boxes)
    assert all(b[2] <= 400 for b in train_positions(split))
    with pytest.raises(ConfigError, match="chip size 512 px is larger"):
        blocked_split(600, 900, 512, 0.2, 0, region=(0, 0, 400, 900))


def test_sample_train_windows_is_seeded():
    split = blocked_split(600, 900, 128, 0.2, 0)
    positions = train_positions(split)
    a = sample_train_windows(positions, 10, random.Random(3))
    b = sample_train_windows(positions, 10, random.Random(3))
    assert a == b
