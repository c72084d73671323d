"""Tile covers of an area: XYZ web-map tiles (mercantile) or a regular grid of square cells in a projected CRS.

A cover is a list of cells. An XYZ cell is a `mercantile.Tile`; a grid cell is a `GridCell` whose column and row
count cells of `size` CRS units from the CRS origin (row grows northwards), so its bounds follow from its id alone.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterable, Sequence
from typing import TypeAlias

import mercantile
import numpy as np
import shapely
from rasterio.crs import CRS

from landsight.acquire.area import MAX_LATITUDE, Area
from landsight.acquire.errors import AreaError

MAX_ZOOM = 24
MAX_CELLS = 5_000_000
"""Refuse covers larger than this (a typo in the zoom or the grid cell size, not a real job)."""

WEB_MERCATOR = CRS.from_epsg(3857)


@dataclasses.dataclass(frozen=True, order=True)
class GridCell:
    """A square cell of a regular grid: `x` columns and `y` rows of `size` CRS units (metres; degrees for a
    geographic CRS) from the origin of EPSG:`epsg`."""

    x: int
    y: int
    epsg: int
    size: float

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(left, bottom, right, top) in the grid's CRS."""
        return self.x * self.size, self.y * self.size, (self.x + 1) * self.size, (self.y + 1) * self.size


Cell: TypeAlias = mercantile.Tile | GridCell


def check_zoom(zoom: int) -> int:
    """Return `zoom` if it is a valid web-map zoom level (0..24)."""
    if not 0 <= zoom <= MAX_ZOOM:
        raise AreaError(f"`zoom` {zoom} is outside 0..{MAX_ZOOM}; web-map zooms run from 0 (world) to {MAX_ZOOM} "
                        "(about 1 cm pixels)")
    return zoom


def xyz_cover(area: Area, zoom: int) -> list[mercantile.Tile]:
    """XYZ tiles at `zoom` that intersect `area` (for a bbox: exactly `mercantile.tiles` of it), sorted."""
    check_zoom(zoom)
    west, south, east, north = area.bounds
    south, north = max(south, -MAX_LATITUDE), min(north, MAX_LATITUDE)
    if south >= north:
        raise AreaError(f"{area.source} lies beyond the Web Mercator latitude limit of +/-{MAX_LATITUDE:.4f} "
                        "degrees; XYZ tiles cannot cover it: use a grid cover in a polar projection (`epsg`)")
    _check_count(_xyz_count(west, south, east, north, zoom), f"`zoom` {zoom}")
    tiles = list(mercantile.tiles(west, south, east, north, zoom))
    if not area.geometry.equals(shapely.box(*area.bounds)):
        boxes = np.array([shapely.box(*mercantile.bounds(t)) for t in tiles], dtype=object)
        tiles = [t for t, keep in zip(tiles, shapely.intersects(boxes, area.geometry), strict=True) if keep]
    return sorted(tiles, key=lambda t: (t.z, t.x, t.y))


def _xyz_count(west: float, south: float, east: float, north: float, zoom: int) -> int:
    upper_left = mercantile.tile(west, north, zoom)
    lower_right = mercantile.tile(min(east, 180 - 1e-9), max(south, -MAX_LATITUDE + 1e-9), zoom)
    return (lower_right.x - upper_left.x + 1) * (lower_right.y - upper_left.y + 1)


def grid_cover(area: Area, epsg: int, size: float) -> list[GridCell]:
    """Cells of a grid of `size` CRS units (metres, or degrees for a geographic CRS) in EPSG:`epsg` that intersect
    `area`, sorted by column then row."""
    try:
        crs = CRS.from_epsg(epsg)
    except Exception as exc:  # rasterio raises CRSError for unknown codes
        raise AreaError(f"`epsg` {epsg} is not a known EPSG code; pass e.g. 32618 (UTM 18N) or 3035") from exc
    if not (math.isfinite(size) and size > 0):
        raise AreaError(f"`size` {size} must be a positive number of the CRS's units (metres; degrees for "
                        "EPSG:4326), e.g. 2560")
    geometry = area.in_crs(crs)
    left, bottom, right, top = geometry.bounds
    cols = range(math.floor(left / size), math.ceil(right / size))
    rows = range(math.floor(bottom / size), math.ceil(top / size))
    _check_count(len(cols) * len(rows), f"`size` {size}")
    cells = [GridCell(x, y, epsg, size) for x in cols for y in rows]
    boxes = np.array([shapely.box(*c.bounds) for c in cells], dtype=object)
    return [c for c, keep in zip(cells, shapely.intersects(boxes, geometry), strict=True) if keep]


def _check_count(count: int, what: str) -> None:
    if count > MAX_CELLS:
        raise AreaError(f"{what} gives about {count:,} cells, more than {MAX_CELLS:,}; choose a lower zoom, a larger "
                        "grid or a smaller area")


def cell_bounds(cell: Cell) -> tuple[CRS, tuple[float, float, float, float]]:
    """The CRS of `cell` and its (left, bottom, right, top) bounds in it (EPSG:3857 metres for XYZ tiles)."""
    if isinstance(cell, GridCell):
        return CRS.from_epsg(cell.epsg), cell.bounds
    b = mercantile.xy_bounds(cell)
    return WEB_MERCATOR, (b.left, b.bottom, b.right, b.top)


def cell_id(cell: Cell) -> str:
    """A short id for reports: "z/x/y" for XYZ tiles, "EPSG:e/size/x/y" for grid cells."""
    if isinstance(cell, GridCell):
        return f"EPSG:{cell.epsg}/{cell.size:g}/{cell.x}/{cell.y}"
    return f"{cell.z}/{cell.x}/{cell.y}"


def cell_parts(cell: Cell) -> tuple[str, str, str]:
    """Folder, subfolder and file stem of `cell` inside a tile folder: z/x/y or epsg-size/x/y."""
    if isinstance(cell, GridCell):
        return f"{cell.epsg}-{cell.size:g}", str(cell.x), str(cell.y)
    return str(cell.z), str(cell.x), str(cell.y)


def parse_fractions(text: str) -> tuple[float, ...]:
    """Parse "0.8,0.2" (train, validation[, test]) into fractions that are positive and sum to 1."""
    try:
        fractions = tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise AreaError(f"`split` {text!r} is not comma-separated fractions; pass e.g. 0.8,0.2") from exc
    if not 2 <= len(fractions) <= 3 or any(not (0 < f < 1) for f in fractions) or abs(sum(fractions) - 1) > 1e-6:
        raise AreaError(f"`split` {text!r} needs two or three fractions between 0 and 1 that sum to 1 "
                        "(train,validation[,test]), e.g. 0.8,0.2")
    return fractions


SPLIT_NAMES = ("train", "validation", "test")


def blocked_split(cells: Sequence[Cell], fractions: Sequence[float], block: int, seed: int = 0) -> list[str]:
    """A split name for each cell, assigned per block of `block` x `block` cells so that neighbours share a split.

    Blocks are shuffled with `seed`, then each goes to the split furthest below its share of cells; shares are met
    to within one block.
    """
    if block < 1:
        raise AreaError(f"`block` {block} must be at least 1")
    blocks: dict[tuple[int, int], list[int]] = {}
    for i, cell in enumerate(cells):
        blocks.setdefault((cell.x // block, cell.y // block), []).append(i)
    keys = sorted(blocks)
    random.Random(seed).shuffle(keys)
    counts = [0] * len(fractions)
    names = [""] * len(cells)
    for key in keys:
        members = blocks[key]
        total = sum(counts) + len(members)
        pick = max(range(len(fractions)), key=lambda k: fractions[k] * total - counts[k])
        counts[pick] += len(members)
        for i in members:
            names[i] = SPLIT_NAMES[pick]
    return names


def count_splits(names: Iterable[str]) -> dict[str, int]:
    """How many cells each split holds, in split order."""
    listed = list(names)
    return {name: listed.count(name) for name in SPLIT_NAMES if name in listed}
