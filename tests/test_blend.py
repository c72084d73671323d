"""Blending overlapping windows into strips."""

import numpy as np

from landsight.imagery.windows import aligned_window_rows
from landsight.predict.blend import StripBlender, blend_weights


def _blend_all(width, height, chip, overlap, field):
    """Run a blender over a raster where every window 'predicts' the matching crop of `field`."""
    out = np.zeros((2, height, width), dtype=np.float32)
    rows = aligned_window_rows(width, height, chip, overlap)
    blender = StripBlender(width, height, chip, 2, overlap)
    for r, row in enumerate(rows):
        for w in row:
            r0, c0 = int(w.row_off), int(w.col_off)
            blender.add(w, field[:, r0:r0 + int(w.height), c0:c0 + int(w.width)])
        until = int(rows[r + 1][0].row_off) if r + 1 < len(rows) else height
        for strip, data in blender.flush(until):
            s0 = int(strip.row_off)
            out[:, s0:s0 + int(strip.height)] = data
    return out


def test_blending_consistent_windows_reproduces_the_field_exactly():
    rng = np.random.default_rng(0)
    field = rng.random((2, 300, 500)).astype(np.float32)
    out = _blend_all(500, 300, 128, 64, field)
    np.testing.assert_allclose(out, field, rtol=1e-5, atol=1e-6)


def test_blend_weights_fall_towards_edges_and_stay_positive():
    w = blend_weights(64, 64, 16)
    assert w.min() > 0
    assert w[32, 32] == 1.0
    assert w[0, 32] < w[8, 32] < w[16, 32]


def test_small_raster_single_window():
    field = np.ones((2, 40, 50), dtype=np.float32) * 0.5
    np.testing.assert_allclose(_blend_all(50, 40, 64, 32, field), field)
