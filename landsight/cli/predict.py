"""`landsight predict`: a MODEL over a whole raster -> a georeferenced class (or probability) COG."""

from __future__ import annotations

import click

from landsight.cli import options
from landsight.cli.remote import image_path, is_stac_reference, stac_options
from landsight.imagery.bands import parse_band_indexes


@click.command()
@options.model_arg
@options.image_arg
@options.output_opt
@click.option("--probabilities", is_flag=True,
              help="Write one band per class with probabilities scaled to 0..250 instead of class values.")
@options.window_opt
@options.overlap_opt
@click.option("--batch-size", type=click.IntRange(min=1), default=1, show_default=True,
              help="Windows per forward pass (1024 px windows are large: more mostly costs memory).")
@options.bands_opt
@options.scale_options
@options.device_opt
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="Network arithmetic; auto: bf16 on CUDA and on CPUs with AVX-512 BF16 or AMX, fp32 elsewhere.")
@click.option("--backend", type=click.Choice(["auto", "torch", "onnx"]), default="auto", show_default=True,
              help="Run a MODEL file on PyTorch or on ONNX Runtime (CPU, exported in memory); auto: ONNX Runtime for "
                   "large fp32 CPU runs.")
@stac_options
@options.overwrite_opt
def predict(model: str, image: str, output: str, probabilities: bool, window: int, overlap: int, batch_size: int,
            bands: str | None, scale: str | None, offset: str | None, device: str, precision: str, backend: str,
            aoi: str | None, stac_bands: str | None, overwrite: bool) -> None:
    """Predict IMAGE with MODEL into OUTPUT (tiled, compressed, Cloud Optimized GeoTIFF with provenance tags).

    IMAGE is a raster, or a STAC Item or ItemCollection (file or URL) whose COG assets are read window by window.
    """
    from landsight.predict import predict_raster

    spec = None
    if is_stac_reference(image):
        from landsight.models.backends import model_metadata

        spec = model_metadata(model, task="segmentation").bands
    with image_path(image, aoi, stac_bands, spec.names if spec else None) as path:
        # a STAC image becomes a VRT holding exactly the model's bands, in its order
        indexes = list(range(1, spec.count + 1)) if spec else parse_band_indexes(bands)
        summary = predict_raster(model, path, output, overlap, batch_size, device, probabilities, indexes,
                                 overwrite, window, source=image, given=options.band_units(scale, offset),
                                 precision=precision, backend=backend)
    click.echo(f"{summary['windows']} windows of {summary['window']} px (overlap {summary['overlap']} px); "
               f"model {summary['model_sha256'][:12]}; wrote {output}")
