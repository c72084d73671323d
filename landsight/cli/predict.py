"""`landsight predict`: a MODEL over a whole raster -> a georeferenced class (or probability) COG."""

from __future__ import annotations

import click

from landsight.cli import options
from landsight.imagery.bands import parse_band_indexes


@click.command()
@options.model_arg
@options.image_arg
@options.output_opt
@click.option("--probabilities", is_flag=True,
              help="Write one band per class with probabilities scaled to 0..250 instead of class values.")
@options.window_opt
@options.overlap_opt
@click.option("--batch-size", type=int, default=1, show_default=True,
              help="Windows per forward pass (1024 px windows are large: more mostly costs memory).")
@options.bands_opt
@options.device_opt
@options.overwrite_opt
def predict(model: str, image: str, output: str, probabilities: bool, window: int, overlap: int, batch_size: int,
            bands: str | None, device: str, overwrite: bool) -> None:
    """Predict IMAGE with MODEL into OUTPUT (tiled, compressed, Cloud Optimized GeoTIFF with provenance tags)."""
    from landsight.predict import predict_raster

    summary = predict_raster(model, image, output, overlap, batch_size, device, probabilities,
                             parse_band_indexes(bands), overwrite, window)
    click.echo(f"{summary['windows']} windows of {summary['window']} px (overlap {summary['overlap']} px); "
               f"model {summary['model_sha256'][:12]}; wrote {output}")
