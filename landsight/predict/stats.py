"""Per-window statistics of a class mask: clear or cloudy, and class areas over each window's own share of pixels."""

from __future__ import annotations

import csv
import dataclasses
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from rasterio.windows import Window
from rasterio.windows import bounds as window_bounds

from landsight.geo import area_m2
from landsight.imagery.io import open_raster, read_window
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.outputs import atomic_path


@dataclasses.dataclass(frozen=True)
class WindowStats:
    """One window: its pixel `window`, its `core` (the pixels nearer its centre than any neighbour's; cores of all
    windows partition the raster, so their areas add up), whether it was cloudy, and areas in m² per class."""

    window: Window
    core: Window
    cloudy: bool
    class_area_m2: dict[str, float]
    nodata_area_m2: float


def _cuts(starts: Sequence[int], sizes: Sequence[int], length: int) -> list[tuple[int, int]]:
    """Core [start, end) of each window along one axis: boundaries halfway through each overlap."""
    bounds = [0] + [(s + prev + size) // 2 for s, prev, size in zip(starts[1:], starts[:-1], sizes[:-1], strict=True)]
    return list(zip(bounds, [*bounds[1:], length], strict=True))


def window_cores(rows: Sequence[Sequence[Window]], width: int, height: int) -> list[tuple[Window, Window]]:
    """(window, core) for every window of a row-major grid (`plan.rows`), the cores tiling the raster exactly."""
    tops = [int(row[0].row_off) for row in rows]
    row_cuts = _cuts(tops, [int(row[0].height) for row in rows], height)
    pairs = []
    for row, (r0, r1) in zip(rows, row_cuts, strict=True):
        col_cuts = _cuts([int(w.col_off) for w in row], [int(w.width) for w in row], width)
        pairs += [(w, Window(c0, r0, c1 - c0, r1 - r0)) for w, (c0, c1) in zip(row, col_cuts, strict=True)]
    return pairs


def window_stats(mask_path: str | Path, rows: Sequence[Sequence[Window]], classes: ClassTable,
                 cloudy: Collection[tuple[int, int]] = ()) -> list[WindowStats]:
    """Class areas (m²) per window core of a class mask; `cloudy` holds (col_off, row_off) of cloudy windows."""
    lut = classes.index_lut()
    stats = []
    with open_raster(mask_path) as src:
        for window, core in window_cores(rows, src.width, src.height):
            data = read_window(src, core, [1])[0]
            counts = np.bincount(lut[data].ravel(), minlength=256)
            box = shapely.box(*window_bounds(core, src.transform))
            pixel_m2 = float(area_m2(np.array([box], dtype=object), src.crs)[0]) / max(data.size, 1)
            areas = {c.name: round(float(counts[i]) * pixel_m2, 3) for i, c in enumerate(classes.classes)}
            key = (int(window.col_off), int(window.row_off))
            nodata = round(float(counts[IGNORE_VALUE]) * pixel_m2, 3)
            stats.append(WindowStats(window, core, key in cloudy, areas, nodata))
    return stats


def stats_rows(image: str, stats: Sequence[WindowStats]) -> list[dict[str, Any]]:
    """Flat table rows: image, window and core in pixels, status (clear/cloudy), nodata and class areas in m²."""
    rows = []
    for s in stats:
        w, c = s.window, s.core
        core = ",".join(str(int(v)) for v in (c.col_off, c.row_off, c.width, c.height))
        rows.append({"image": image, "col_off": int(w.col_off), "row_off": int(w.row_off), "width": int(w.width),
                     "height": int(w.height), "core": core,
                     "status": "cloudy" if s.cloudy else "clear", "nodata_m2": s.nodata_area_m2,
                     **{f"{name}_m2": area for name, area in s.class_area_m2.items()}})
    return rows


def write_stats_csv(rows: Sequence[dict[str, Any]], path: str | Path, overwrite: bool = False) -> None:
    """Write table rows as CSV, atomically."""
    with atomic_path(path, overwrite) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["image"])
        writer.writeheader()
        writer.writerows(rows)
