"""`landsight stac search`: items of a STAC catalogue over an area and a time range -> an ItemCollection file."""

from __future__ import annotations

import click

from landsight.cli import options
from landsight.cli.advice import CommandGroup
from landsight.cli.cover import area_options, read_area


@click.group(cls=CommandGroup)
def stac() -> None:
    """STAC catalogues: find imagery for an area."""


@stac.command()
@click.argument("url")
@click.option("--collection", required=True, help="Collection id, e.g. sentinel-2-l2a.")
@area_options
@click.option("--datetime", "datetime", default=None, help="START/END (ISO dates; .. for an open end).")
@click.option("--max-cloud", type=float, default=None, help="Keep items with eo:cloud_cover at most this (percent).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=1000, show_default=True, help="At most this many.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="ItemCollection JSON to write.")
@options.overwrite_opt
def search(url: str, collection: str, bbox: str | None, geojson: str | None, raster: str | None,
           datetime: str | None, max_cloud: float | None, limit: int, output: str, overwrite: bool) -> None:
    """Search the STAC API or static catalogue at URL; write the matching items to OUTPUT."""
    from landsight.acquire import require_acquire

    require_acquire()
    from landsight.acquire.stac import search as run_search
    from landsight.acquire.stac import write_item_collection
    from landsight.outputs import check_output

    check_output(output, overwrite)
    area = read_area(bbox, geojson, raster)
    items = run_search(url, collection, area, datetime, max_cloud, limit)
    write_item_collection(items, output, overwrite)
    click.echo(f"{len(items)} item(s): {', '.join(i.id for i in items.items[:5])}{' ...' if len(items) > 5 else ''}; "
               f"wrote {output}")
