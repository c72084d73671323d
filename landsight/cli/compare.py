"""`landsight compare`: a prediction against open data -> a report directory with a review map."""

from __future__ import annotations

from typing import Literal, cast

import click

from landsight.cli import options
from landsight.compare import MatchParams, TileGrid, compare_prediction


@click.command()
@click.argument("pred", type=options.InputPath(exists=True, dir_okay=False))
@options.labels_arg
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Report directory to create.")
@click.option("--class", "class_name", default=None,
              help="Class to compare (name or value); default: the prediction's only non-background class.")
@click.option("--image", type=options.InputPath(exists=True, dir_okay=False), default=None,
              help="The predicted image: shown on the review map; required when PRED is polygons (sets the grid).")
@click.option("--grid", type=click.Choice(["xyz", "regular"]), default="xyz", show_default=True,
              help="Tiles to score: XYZ web-map tiles (--zoom) or a regular pixel grid (--tile-size).")
@click.option("--zoom", type=click.IntRange(0, 24), default=18, show_default=True, help="XYZ zoom level.")
@click.option("--tile-size", type=click.IntRange(1), default=256, show_default=True,
              help="Regular grid tile size in pixels.")
@click.option("--qod-threshold", type=options.FiniteFloatRange(0, 100), default=80.0, show_default=True,
              help="Tiles with a QoD below this are listed as worst tiles.")
@click.option("--iou-threshold", type=options.FiniteFloatRange(0, 1, min_open=True), default=0.5, show_default=True,
              help="A feature is confirmed at this IoU or more (and no shift).")
@click.option("--max-shift", type=options.FiniteFloatRange(0), default=None,
              help="Metres to search for a displaced feature [default: max(10 m, 10 px)].")
@click.option("--tolerance", type=options.FiniteFloatRange(0), default=None,
              help="Offsets up to this many metres are not a shift [default: 2 px].")
@click.option("--min-area", type=options.FiniteFloatRange(0), default=0.0, show_default=True,
              help="Ignore predicted polygons and missing pieces smaller than this (m²).")
@click.option("--threshold", type=options.FiniteFloatRange(0, 1), default=0.5, show_default=True,
              help="Foreground probability threshold for 1-band probability rasters.")
@options.crs_opt
@options.overwrite_opt
def compare(pred: str, labels: str, output: str, class_name: str | None, image: str | None, grid: str, zoom: int,
            tile_size: int, qod_threshold: float, iou_threshold: float, max_shift: float | None,
            tolerance: float | None, min_area: float, threshold: float, crs: str | None, overwrite: bool) -> None:
    """Compare PRED (mask/probability raster from `predict`, or polygons from `vectorize`) with open data LABELS.

    Writes per-tile IoU/QoD, per-feature layers (confirmed, shifted, unsupported, missing), summary.json,
    report.html and review.html (an offline map to walk the worst tiles) into the --output directory.
    """
    match = MatchParams(iou_threshold=iou_threshold, match_iou=min(0.25, iou_threshold), max_shift=max_shift,
                        tolerance=tolerance, min_area=min_area)
    tile_grid = TileGrid(cast(Literal["xyz", "regular"], grid), zoom, tile_size)
    summary = compare_prediction(pred, labels, output, class_name, image, tile_grid, qod_threshold, match, threshold,
                                 overwrite=overwrite, crs=crs)
    for status, entry in summary.features.items():
        click.echo(f"{status:>12}: {entry['count']:>6} features, {entry['area_m2']:>12.1f} m²")
    tiles = summary.tiles
    click.echo(f"{'tiles':>12}: {tiles['count']:>6}, mean QoD {tiles['mean_qod']}, "
               f"{tiles['below_threshold']} below {qod_threshold}")
    click.echo(f"wrote {output}/ (open {output}/review.html)")
