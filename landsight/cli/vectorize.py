"""`landsight vectorize`: a class mask -> polygons per class (GeoJSON, GeoJSON sequence, GeoPackage, ...)."""

from __future__ import annotations

import click

from landsight.cli import options
from landsight.vectorize import vectorize_mask


@click.command()
@click.argument("mask", type=options.InputPath(dir_okay=False))
@options.output_opt
@click.option("--simplify", default=0.0, show_default=True, type=options.FiniteFloatRange(min=0),
              help="Simplification tolerance in the mask's CRS units (topology preserved); 0 keeps every vertex.")
@click.option("--pixel-edges", is_flag=True,
              help="Keep the exact pixel edges (staircases) instead of cutting pixel corners into straight lines.")
@click.option("--min-area", default=0.0, show_default=True, type=options.FiniteFloatRange(min=0),
              help="Drop polygons smaller than this, in m² (CRS units² for projected masks).")
@options.crs_opt
@click.option("--block", default=1024, show_default=True, type=click.IntRange(min=16),
              help="Read the mask in windows of this many pixels; objects crossing windows are merged.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Polygonize windows in this many processes (the polygons are the same).")
@options.overwrite_opt
def vectorize(mask: str, output: str, simplify: float, pixel_edges: bool, min_area: float, crs: str | None,
              block: int, workers: int, overwrite: bool) -> None:
    """Turn MASK (class values per pixel) into polygons per class, written in the format the --output extension
    names: .geojson (RFC 7946, WGS 84), .geojsonl (one feature per line), .gpkg (the mask's CRS), ..."""
    n = vectorize_mask(mask, output, simplify, min_area, crs, overwrite, block, not pixel_edges, workers)
    click.echo(f"wrote {n} polygon(s) to {output}")
