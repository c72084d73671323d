"""Cover files: a CSV of cell ids (x,y,z or x,y,epsg,size, optional split) and a GeoJSON of the cells beside it."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import mercantile
import numpy as np
import shapely

from landsight.acquire.cover import Cell, GridCell, cell_bounds, cell_id
from landsight.acquire.errors import CoverError
from landsight.geo import WGS84
from landsight.labels.vector_out import write_features
from landsight.labels.vectors import Features
from landsight.outputs import atomic_path, check_output

XYZ_HEADER = ("x", "y", "z")
GRID_HEADER = ("x", "y", "epsg", "size")


def cover_paths(output: str | Path) -> tuple[Path, Path]:
    """The CSV and GeoJSON files a cover named `output` is written to (COVER.csv and COVER.geojson)."""
    output = Path(output)
    stem = output.with_suffix("") if output.suffix.lower() in (".csv", ".geojson", ".json") else output
    return stem.with_name(stem.name + ".csv"), stem.with_name(stem.name + ".geojson")


def write_cover(output: str | Path, cells: Sequence[Cell], splits: Sequence[str] | None = None,
                overwrite: bool = False) -> tuple[Path, Path]:
    """Write `cells` (and each one's split) as CSV and GeoJSON; both or neither land. Returns the two paths."""
    csv_path, geojson_path = cover_paths(output)
    check_output(csv_path, overwrite)
    check_output(geojson_path, overwrite)
    with atomic_path(csv_path, overwrite) as tmp_csv:
        tmp_csv.write_text(_csv_text(cells, splits), newline="")
        write_features(geojson_path, _cell_features(cells, splits), overwrite=overwrite, precision=9)
    return csv_path, geojson_path


def _csv_text(cells: Sequence[Cell], splits: Sequence[str] | None) -> str:
    grid = bool(cells) and isinstance(cells[0], GridCell)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow((*(GRID_HEADER if grid else XYZ_HEADER), *(("split",) if splits else ())))
    for i, cell in enumerate(cells):
        values = (cell.x, cell.y, cell.epsg, f"{cell.size:g}") if isinstance(cell, GridCell) else tuple(cell)
        writer.writerow((*values, *((splits[i],) if splits else ())))
    return buffer.getvalue()


def _cell_features(cells: Sequence[Cell], splits: Sequence[str] | None) -> Features:
    """The cells' outlines (in their CRS) with id, x, y and z (or epsg and size) and split properties."""
    if not cells:
        return Features(np.array([], dtype=object), [], WGS84)
    crs, _ = cell_bounds(cells[0])
    boxes = np.array([_outline(c) for c in cells], dtype=object)
    properties = []
    for i, cell in enumerate(cells):
        props: dict = {"id": cell_id(cell), "x": cell.x, "y": cell.y}
        props.update({"epsg": cell.epsg, "size": cell.size} if isinstance(cell, GridCell) else {"z": cell.z})
        if splits:
            props["split"] = splits[i]
        properties.append(props)
    return Features(boxes, properties, crs)


def _outline(cell: Cell) -> shapely.Polygon:
    """The cell's outline in its CRS; grid cell edges densified so that they bend in WGS 84 as they should."""
    left, bottom, right, top = cell_bounds(cell)[1]
    box = shapely.box(left, bottom, right, top)
    return shapely.segmentize(box, (right - left) / 8) if isinstance(cell, GridCell) else box


def read_cover(path: str | Path) -> tuple[list[Cell], list[str]]:
    """Cells and their splits ("" when none) from a cover CSV (with or without header) or a cover GeoJSON."""
    path = Path(path)
    if not path.is_file():
        raise CoverError(f"cover file not found: {path}; make one with `landsight cover`")
    text = path.read_text(errors="replace")
    if path.suffix.lower() in (".geojson", ".json"):
        rows = _geojson_rows(text, path)
    else:
        rows = [r for r in csv.reader(io.StringIO(text)) if r and any(v.strip() for v in r)]
    if rows and rows[0] and not _is_number(rows[0][0]):
        rows = rows[1:]
    if not rows:
        raise CoverError(f"cover {path} lists no tiles; make one with `landsight cover`")
    cells, splits = [], []
    for n, row in enumerate(rows, start=1):
        cell = _parse_row(row, path, n)
        width = 4 if isinstance(cell, GridCell) else 3
        cells.append(cell)
        splits.append(row[width].strip() if len(row) > width else "")
    return cells, splits


def _geojson_rows(text: str, path: Path) -> list[list[str]]:
    try:
        features = json.loads(text)["features"]
        rows = []
        for f in features:
            p = f["properties"]
            ids = [p["x"], p["y"], p["epsg"], p["size"]] if "epsg" in p else [p["x"], p["y"], p["z"]]
            rows.append([str(v) for v in ids] + ([str(p["split"])] if "split" in p else []))
        return rows
    except (ValueError, KeyError, TypeError) as exc:
        raise CoverError(f"{path} is not a cover GeoJSON written by `landsight cover` ({exc!r}); pass the CSV") from exc


def _is_number(text: str) -> bool:
    with contextlib.suppress(ValueError):
        float(text)
        return True
    return False


def _parse_row(row: list[str], path: Path, line: int) -> Cell:
    try:
        if len(row) >= 4 and _is_number(row[3]):
            return GridCell(int(row[0]), int(row[1]), int(row[2]), float(row[3]))
        x, y, z = (int(v) for v in row[:3])
    except (ValueError, IndexError) as exc:
        raise CoverError(f"{path} row {line} {row!r} is not x,y,z (or x,y,epsg,size); fix or regenerate the cover "
                         "with `landsight cover`") from exc
    if not (0 <= z <= 30 and 0 <= x < 2**z and 0 <= y < 2**z):
        raise CoverError(f"{path} row {line}: tile {z}/{x}/{y} does not exist (x and y run from 0 to 2**z - 1)")
    return mercantile.Tile(x, y, z)
