"""`landsight pipeline run`: segment many rasters with Apache Beam (any runner) or a PyFlink job on Flink."""

from __future__ import annotations

import logging

import click

from landsight.cli import options
from landsight.cli.advice import CommandGroup
from landsight.cli.remote import is_stac_reference, stac_inputs, stac_options
from landsight.errors import ConfigError
from landsight.imagery.bands import parse_band_indexes


@click.group(cls=CommandGroup)
def pipeline() -> None:
    """Inference at scale: Beam pipelines (DirectRunner by default) and a PyFlink engine."""


@pipeline.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.option("--input", "inputs", multiple=True, required=True,
              help="Rasters: paths, comma-separated lists, globs, directories, @list.txt, /vsicurl/ URLs, s3:// or "
                   "gs:// objects, globs and prefixes (ending in /; read through GDAL's /vsis3/, /vsigs/), or a STAC "
                   "Item or ItemCollection (file or URL: one raster per item, read over HTTP; see --aoi) "
                   "(repeatable). With --streaming: the directory or glob to watch.")
@click.option("--model", required=True, type=options.InputPath(dir_okay=False),
              help="Segmentation MODEL file, or its ONNX export (.onnx, run on ONNX Runtime).")
@click.option("--cloud-model", default=None, type=options.InputPath(dir_okay=False),
              help="Cloud gate model (MODEL file or .onnx export): cloudy windows are not segmented (nodata) and "
                   "marked cloudy in the stats.")
@click.option("-o", "--out-dir", required=True, type=click.Path(file_okay=False),
              help="Output folder, or an object-store prefix (s3://bucket/out; credentials from the environment).")
@click.option("--runner", default="DirectRunner", show_default=True,
              help="Beam runner: DirectRunner, PortableRunner, FlinkRunner, SparkRunner, DataflowRunner...")
@click.option("--engine", type=click.Choice(["beam", "flink"]), default="beam", show_default=True,
              help="beam: a Beam pipeline on --runner; flink: a PyFlink job on an embedded mini-cluster or, with "
                   "--flink-master, a Flink cluster (needs the environment made by scripts/flink-env.sh).")
@options.window_opt
@options.overlap_opt
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Windows per forward pass (1024 px windows are large: more mostly costs memory).")
@options.bands_opt
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
              help="Where workers run the models.")
@click.option("--simplify", default=0.0, show_default=True, type=options.FiniteFloatRange(min=0),
              help="Polygon simplification tolerance, in the mask's CRS units.")
@click.option("--min-area", default=0.0, show_default=True, type=options.FiniteFloatRange(min=0),
              help="Drop polygons smaller than this, in m².")
@options.crs_option("--polygon-crs")
@click.option("--polygons/--no-polygons", default=True, show_default=True,
              help="Write polygons (KEY.geojsonl, or KEY.gpkg with a --crs other than WGS 84); without them "
                   "`landsight vectorize` can make them later.")
@click.option("--streaming", is_flag=True, help="Watch --input and process rasters as they arrive.")
@click.option("--stop-after", type=options.FiniteFloatRange(min=0), default=None,
              help="Streaming: stop watching after this many seconds, finish in-flight rasters and exit.")
@click.option("--poll-interval", type=options.FiniteFloatRange(min=0.1), default=2.0, show_default=True,
              help="Streaming: seconds between listings of the watched folder.")
@click.option("--window-seconds", type=options.FiniteFloatRange(min=0.1), default=10.0, show_default=True,
              help="Streaming: fixed windows of time within which arriving rasters are batched.")
@click.option("--parallelism", type=click.IntRange(min=1), default=1, show_default=True,
              help="Flink engine: parallelism of the job (task slots it uses).")
@click.option("--flink-master", default=None, metavar="HOST:PORT",
              help="Flink engine: submit the job to the Flink cluster whose JobManager REST endpoint is HOST:PORT "
                   "(scripts/flink-cluster.sh starts a local one); without it, an embedded mini-cluster runs it.")
@click.option("--restart-attempts", type=click.IntRange(min=0), default=3, show_default=True,
              help="Flink engine: restarts of failed tasks (fixed delay) before the job fails.")
@stac_options
@click.pass_context
def run(ctx: click.Context, inputs: tuple[str, ...], model: str, cloud_model: str | None, out_dir: str, runner: str,
        engine: str, window: int, overlap: int, batch_size: int, bands: str | None, device: str, simplify: float,
        min_area: float, crs: str | None, polygons: bool, streaming: bool, stop_after: float | None,
        poll_interval: float, window_seconds: float, parallelism: int, flink_master: str | None,
        restart_attempts: int, aoi: str | None, stac_bands: str | None) -> None:
    """Segment rasters into masks (COG), polygons and per-window stats in OUT_DIR.

    Polygons are a GeoJSON sequence in WGS 84 (KEY.geojsonl), or a GeoPackage (KEY.gpkg) in the CRS --crs names
    ('raster': each mask's own).

    Unknown options are passed to Beam, e.g. `--runner PortableRunner --job_endpoint=localhost:8099
    --environment_type=LOOPBACK`. Completed rasters are skipped on a rerun; failed ones are recorded in
    OUT_DIR/dead-letter/ and the exit code is 1.
    """
    from landsight.pipeline.stages import JobConfig
    from landsight.pipeline.storage import is_url

    beam_log = logging.getLogger("apache_beam")
    beam_log.setLevel(max(logging.getLogger().getEffectiveLevel(), logging.WARNING))
    indexes = parse_band_indexes(bands)
    config = JobConfig(model, out_dir, cloud_model, window, overlap, batch_size, tuple(indexes) if indexes else None,
                       device, simplify, min_area, crs, polygons)
    if engine == "flink" and (streaming or ctx.args):
        raise click.UsageError("--engine flink runs batch jobs only, without Beam options")
    if engine == "flink" and is_url(out_dir):
        raise click.UsageError(f"--engine flink writes to a local or shared folder, not {out_dir}; use --engine beam "
                               "for object-store outputs")
    if engine != "flink" and flink_master:
        raise click.UsageError("--flink-master submits the Flink engine's job: add --engine flink (for Beam's "
                               "FlinkRunner pass --runner FlinkRunner --flink_master=HOST:PORT)")
    if streaming and (aoi or stac_bands):
        raise ConfigError("--streaming watches a folder; run STAC inputs (--aoi, --stac-bands) as a batch job")
    from landsight.models.backends import model_metadata

    stac = any(is_stac_reference(i) for i in inputs)
    model_bands = model_metadata(model, task="segmentation").bands.names if stac else ()
    with stac_inputs(inputs, aoi, stac_bands, model_bands) as rasters:
        if engine == "flink":
            from landsight.pipeline.flink import run_flink

            summary = run_flink(rasters, config, parallelism, flink_master=flink_master,
                                restart_attempts=restart_attempts)
        else:
            from landsight.pipeline.run import run_pipeline

            summary = run_pipeline(rasters, config, runner, ctx.args, streaming=streaming, stop_after=stop_after,
                                   poll_interval=poll_interval, window_seconds=window_seconds)
    click.echo(f"{len(summary['done'])} raster(s) done, {len(summary['failed'])} failed, "
               f"{len(summary['missing'])} unfinished; outputs in {out_dir}")
    for failure in summary["failed"]:
        click.secho(f"  {failure['image']}: {failure['stage']}: {failure['error']}", err=True, fg="yellow")
    if summary["failed"]:
        ctx.exit(1)
