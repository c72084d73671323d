"""`landsight tile` (a raster -> XYZ GeoTIFF tiles) and `landsight mosaic` (tiles -> one GeoTIFF)."""

from __future__ import annotations

import click

from landsight.cli import options

_RESAMPLING = ["nearest", "bilinear", "cubic", "average", "mode"]


@click.command()
@click.argument("raster", type=options.InputPath(exists=True, dir_okay=False))
@click.option("--zoom", required=True, help="Zoom level, or MIN-MAX for a pyramid, e.g. 14-16.")
@click.option("--resampling", type=click.Choice(_RESAMPLING), default="bilinear", show_default=True,
              help="Resampling onto the tiles (nearest or mode for class rasters).")
@click.option("--tile-size", type=click.IntRange(16, 4096), default=256, show_default=True, help="Tile size in px.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Tile folder (z/x/y.tif).")
@options.overwrite_opt
def tile(raster: str, zoom: str, resampling: str, tile_size: int, output: str, overwrite: bool) -> None:
    """Cut RASTER into XYZ GeoTIFF tiles (EPSG:3857; every band, data type and nodata kept)."""
    from rasterio.warp import Resampling

    from landsight.acquire.pyramid import parse_zooms, tile_raster

    summary = tile_raster(raster, parse_zooms(zoom), output, overwrite, Resampling[resampling], tile_size)
    counts = ", ".join(f"zoom {z}: {n}" for z, n in summary["tiles"].items())
    click.echo(f"{counts} tiles of {summary['bands']} band(s) {summary['dtype']}; wrote {output}")


@click.command()
@click.argument("folder", type=options.InputPath(exists=True, file_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="GeoTIFF to write.")
@click.option("--resampling", type=click.Choice(_RESAMPLING), default="bilinear", show_default=True,
              help="Resampling back onto the source grid recorded by `landsight tile`.")
@options.overwrite_opt
def mosaic(folder: str, output: str, resampling: str, overwrite: bool) -> None:
    """Merge the georeferenced tiles in FOLDER into one GeoTIFF (on the tiled raster's own grid when known)."""
    from rasterio.warp import Resampling

    from landsight.acquire.mosaic import mosaic_folder

    summary = mosaic_folder(folder, output, overwrite, Resampling[resampling])
    click.echo(f"{summary['tiles']} tiles -> {summary['width']} x {summary['height']} px in {summary['crs']}; "
               f"wrote {output}")
