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
