"""`landsight cover`: an area -> XYZ tiles or grid cells covering it (CSV + GeoJSON), optionally split."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import click

from landsight.cli import options
from landsight.errors import ConfigError

if TYPE_CHECKING:
    from landsight.acquire.area import Area

F = TypeVar("F", bound=Callable[..., object])


def area_options(func: F) -> F:
    """--bbox / --geojson / --raster: one of them names the area."""
    func = click.option("--raster", type=options.InputPath(dir_okay=False), default=None,
                        help="Area: the footprint of this raster.")(func)
    func = click.option("--geojson", "geojson", type=options.InputPath(dir_okay=False), default=None,
                        help="Area: the polygons of this GeoJSON (or other vector) file.")(func)
    return click.option("--bbox", default=None, help="Area: WEST,SOUTH,EAST,NORTH in degrees (WGS 84).")(func)


def read_area(bbox: str | None, geojson: str | None, raster: str | None) -> Area:
    """The one area named by --bbox, --geojson or --raster."""
    from landsight.acquire.area import area_from_geojson, area_from_raster, parse_bbox

    given = [name for name, value in (("--bbox", bbox), ("--geojson", geojson), ("--raster", raster)) if value]
    if len(given) == 1:
        if bbox:
            return parse_bbox(bbox)
        if geojson:
            return area_from_geojson(geojson)
        if raster:
            return area_from_raster(raster)
    raise ConfigError(f"name the area with exactly one of --bbox, --geojson or --raster (got {given or 'none'})")


def _cover_kind(zoom: int | None, grid_crs: int | None, grid_size: float | None) -> int | tuple[int, float]:
    """The zoom of an XYZ cover or the (EPSG code, cell size) of a grid cover: exactly one of the two."""
    if zoom is not None and grid_crs is None and grid_size is None:
        return zoom
    if zoom is None and grid_crs is not None and grid_size is not None:
        return grid_crs, grid_size
    if zoom is None and (grid_crs is not None or grid_size is not None):
        raise ConfigError("a grid needs both --grid-crs EPSG and --grid-size SIZE, e.g. --grid-crs 32618 "
                          "--grid-size 2560")
    raise ConfigError("choose either --zoom Z (XYZ tiles) or --grid-crs EPSG with --grid-size METRES")


@click.command()
@area_options
@click.option("--zoom", type=int, default=None, help="XYZ web-map tiles at this zoom (0..24).")
@click.option("--grid-crs", "epsg", type=int, default=None, help="Instead of XYZ: a regular grid in this EPSG code.")
@click.option("--grid-size", "size", type=float, default=None,
              help="Cell size of the --grid-crs grid in its units (metres; degrees for EPSG:4326).")
@click.option("--split", default=None, help="Train,validation[,test] fractions of a spatially blocked split, "
                                            "e.g. 0.8,0.2.")
@click.option("--block-tiles", "block", type=int, default=4, show_default=True,
              help="With --split: blocks of N x N tiles go to one split together (no leakage between neighbours).")
@click.option("--seed", type=int, default=0, show_default=True, help="With --split: shuffle of the blocks.")
@click.option("-o", "--output", required=True, type=click.Path(),
              help="COVER: writes COVER.csv and COVER.geojson (a .csv or .geojson suffix is replaced).")
@options.overwrite_opt
def cover(bbox: str | None, geojson: str | None, raster: str | None, zoom: int | None, epsg: int | None,
          size: float | None, split: str | None, block: int, seed: int, output: str,
          overwrite: bool) -> None:
    """Tiles covering an area: XYZ tiles at --zoom, or cells of a --grid-crs/--grid-size grid."""
    from landsight.acquire.cover import blocked_split, count_splits, grid_cover, parse_fractions, xyz_cover
    from landsight.acquire.coverfile import write_cover

    kind = _cover_kind(zoom, epsg, size)
    fractions = parse_fractions(split) if split else None
    area = read_area(bbox, geojson, raster)
    cells = xyz_cover(area, kind) if isinstance(kind, int) else grid_cover(area, *kind)
    if not cells:
        raise ConfigError(f"no tiles cover {area.source}; check the area")
    splits = blocked_split(cells, fractions, block, seed) if fractions else None
    csv_path, geojson_path = write_cover(output, cells, splits, overwrite)
    parts = f" ({', '.join(f'{k} {v}' for k, v in count_splits(splits).items())})" if splits else ""
    click.echo(f"{len(cells)} tiles{parts}; wrote {csv_path} and {geojson_path}")
