"""`landsight predict`: a MODEL over a whole raster -> a georeferenced class (or probability) COG."""

from __future__ import annotations

import click

from landsight.cli import options
from landsight.errors import ConfigError
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
@click.option("--aoi", type=options.InputPath(exists=True, dir_okay=False), default=None,
              help="With a STAC IMAGE: predict only this area (GeoJSON); only its windows are read over HTTP.")
@click.option("--stac-bands", default=None,
              help="With a STAC IMAGE: item band names (eo:bands name or common name) in the model's band order; "
                   "default: the model's band names.")
@options.overwrite_opt
def predict(model: str, image: str, output: str, probabilities: bool, window: int, overlap: int, batch_size: int,
            bands: str | None, device: str, aoi: str | None, stac_bands: str | None, overwrite: bool) -> None:
    """Predict IMAGE with MODEL into OUTPUT (tiled, compressed, Cloud Optimized GeoTIFF with provenance tags).

    IMAGE is a raster, or a STAC Item or ItemCollection (file or URL) whose COG assets are read window by window.
    """
    from landsight.acquire.remote import is_stac_reference
    from landsight.predict import predict_raster

    if is_stac_reference(image):
        from landsight.cli.remote import predict_stac

        summary = predict_stac(model, image, output, aoi, stac_bands, overlap, batch_size, device, probabilities,
                               overwrite, window)
    else:
        if aoi or stac_bands:
            raise ConfigError("--aoi and --stac-bands go with a STAC item or ItemCollection as IMAGE (a .json file "
                              "or URL); cut a local raster with gdal_translate -projwin instead")
        summary = predict_raster(model, image, output, overlap, batch_size, device, probabilities,
                                 parse_band_indexes(bands), overwrite, window)
    click.echo(f"{summary['windows']} windows of {summary['window']} px (overlap {summary['overlap']} px); "
               f"model {summary['model_sha256'][:12]}; wrote {output}")
