"""`landsight download`: a cover's tiles from an XYZ or WMS server -> a folder of georeferenced tiles + a report."""

from __future__ import annotations

import click

from landsight.cli import options
from landsight.errors import ConfigError


@click.command()
@click.option("--xyz", "template", default=None, help="XYZ tile URL template with {z}, {x} and {y} ({-y}: TMS rows).")
@click.option("--wms", "url_base", default=None, help="WMS endpoint URL (GetMap requests for each tile's bounds).")
@click.option("--layers", default=None, help="WMS layer name(s), comma-separated.")
@click.option("--styles", default="", help="WMS style name(s).")
@click.option("--time", "wms_time", default=None, help="WMS TIME value, e.g. 2024-06-01.")
@click.option("--wms-version", "version", type=click.Choice(["1.1.1", "1.3.0"]), default="1.3.0", show_default=True)
@click.option("--cover", "cover_path", required=True, type=options.InputPath(exists=True, dir_okay=False),
              help="Cover CSV (or GeoJSON) from `landsight cover`.")
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Tile folder (z/x/y.ext); an existing download folder is resumed.")
@click.option("--format", "fmt", type=click.Choice(["tif", "png", "jpeg"]), default="tif", show_default=True,
              help="Stored tiles: GeoTIFF, or PNG/JPEG as served with a world file and .aux.xml.")
@click.option("--tile-size", type=click.IntRange(16, 4096), default=256, show_default=True,
              help="Tile width and height in pixels (asked of a WMS, checked for XYZ).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Requests in flight at once.")
@click.option("--rate", type=options.FiniteFloatRange(min=0.01), default=None,
              help="At most this many requests per second (retries included); default: no limit.")
@click.option("--timeout", type=options.FiniteFloatRange(min=0.01), default=30.0, show_default=True,
              help="Seconds to wait for each response.")
@click.option("--retries", type=click.IntRange(0, 20), default=3, show_default=True,
              help="Retries of a tile after a timeout, connection error, truncated body, 429 or 5xx.")
@click.option("--mosaic", "mosaic_path", type=click.Path(dir_okay=False), default=None,
              help="Also merge the tiles into this GeoTIFF.")
@options.overwrite_opt
def download(template: str | None, url_base: str | None, layers: str | None, styles: str, wms_time: str | None,
             version: str, cover_path: str, output: str, fmt: str, tile_size: int, concurrency: int,
             rate: float | None, timeout: float, retries: int, mosaic_path: str | None, overwrite: bool) -> None:
    """Download the tiles of a COVER into OUTPUT; run again to fetch what failed (complete tiles are kept)."""
    import logging

    from rich.progress import Progress

    from landsight.acquire import require_acquire

    require_acquire()
    from landsight.acquire.coverfile import read_cover
    from landsight.acquire.download import DownloadSettings
    from landsight.acquire.download import download as run_download
    from landsight.acquire.fetch import RetryPolicy
    from landsight.acquire.sources import FORMATS, Source, WmsSource, XyzSource
    from landsight.outputs import check_output

    if template is not None and url_base is None:
        source: Source = XyzSource(template, tile_size)
    elif url_base is not None and template is None:
        if not layers:
            raise ConfigError("--wms needs --layers NAME[,NAME...]")
        source = WmsSource(url_base, layers, styles, wms_time, version, FORMATS[fmt], tile_size)
    else:
        raise ConfigError("name the source with exactly one of --xyz URL_TEMPLATE or --wms URL")
    if mosaic_path:
        check_output(mosaic_path, overwrite)
    cells, _ = read_cover(cover_path)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request otherwise
    settings = DownloadSettings(fmt, concurrency, rate, timeout, RetryPolicy(attempts=retries + 1))
    with Progress(transient=True) as bar:
        task = bar.add_task("tiles", total=len(cells))
        result = run_download(source, cells, output, settings, lambda n: bar.advance(task, n))
    click.echo(f"{result.downloaded} tiles downloaded, {result.skipped} already complete, {len(result.failed)} "
               f"failed; {result.requests} requests in {result.elapsed_s:.1f} s; report {result.report_path}")
    if result.failed:
        kinds = sorted({f["kind"] for f in result.failed})
        click.secho(f"Error: {len(result.failed)} tile(s) failed ({', '.join(kinds)}); see {result.report_path} and "
                    "run the same command again to fetch them", err=True, fg="red")
        raise SystemExit(1)
    if mosaic_path:
        from landsight.acquire.mosaic import mosaic_folder

        mosaic_folder(output, mosaic_path, overwrite)
        click.echo(f"wrote {mosaic_path}")
