"""Validation by polygon for sparse labels: whole label polygons are held out (a share of each class's polygons),
and validation chips cover them. Training never sees a held-out polygon's labels; validation scores only them."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np
import shapely
from affine import Affine
from rasterio.windows import Window

from landsight.imagery.windows import Box, Split


def choose_validation_polygons(values: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """(N,) bool: the held-out polygons. Of each class's polygons (seeded order) round(fraction x count) are held
    out, at least one for a class of two or more; a class's only polygon stays in training."""
    held_out = np.zeros(len(values), dtype=bool)
    if fraction <= 0:
        return held_out
    for value in np.unique(values).tolist():
        members = np.flatnonzero(values == value).tolist()
        if len(members) < 2:
            continue
        random.Random(f"{seed}-{value}").shuffle(members)
        held_out[members[:max(1, round(fraction * len(members)))]] = True
    return held_out


def covering_windows(geometries: Sequence[shapely.Geometry], transform: Affine, region: Box,
                     chip: int) -> tuple[Window, ...]:
    """Chip windows inside `region` (pixels) that together cover every geometry's pixel bounding box, without
    duplicates, in row-major order."""
    col0, row0, col1, row1 = region
    inverse = ~transform
    corners = set()
    for geometry in geometries:
        left, bottom, right, top = shapely.bounds(geometry).tolist()
        xs, ys = zip(*(inverse @ (x, y) for x, y in ((left, top), (right, bottom))), strict=True)
        c_lo, c_hi = max(col0, int(np.floor(min(xs)))), min(col1, int(np.ceil(max(xs))))
        r_lo, r_hi = max(row0, int(np.floor(min(ys)))), min(row1, int(np.ceil(max(ys))))
        for r in range(r_lo, max(r_hi, r_lo + 1), chip):
            for c in range(c_lo, max(c_hi, c_lo + 1), chip):
                corners.add((min(max(r, row0), row1 - chip), min(max(c, col0), col1 - chip)))
    return tuple(Window(c, r, chip, chip) for r, c in sorted(corners))


def polygon_split(geometries: Sequence[shapely.Geometry], transform: Affine, region: Box, chip: int) -> Split:
    """A `Split` whose validation chips cover the held-out `geometries`; no area is closed to training chips (the
    held-out labels are left out of the training mask instead)."""
    return Split(region, (), covering_windows(geometries, transform, region, chip), chip)
