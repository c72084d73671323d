"""Remote imagery wherever a command takes an image: a STAC Item or ItemCollection (file or URL) plus an area, read
window by window over HTTP through a small VRT (`landsight.acquire.remote`)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import click

from landsight.cli import options
from landsight.errors import ConfigError

F = TypeVar("F", bound=Callable[..., object])


def stac_options(func: F) -> F:
    """--aoi and --stac-bands: how a STAC IMAGE is cut and which of its bands are read."""
    func = click.option("--stac-bands", default=None,
                        help="With a STAC IMAGE: item band names (eo:bands name or common name, e.g. "
                             "blue,green,red,nir), in the model's band order.")(func)
    return click.option("--aoi", type=options.InputPath(exists=True, dir_okay=False), default=None,
                        help="With a STAC IMAGE (Item/ItemCollection file or URL): only this area (GeoJSON) is "
                             "read, window by window over HTTP.")(func)


def is_stac_reference(image: str) -> bool:
    """Whether an image argument names STAC JSON (an http(s) URL or a .json file) rather than a raster."""
    return image.startswith(("http://", "https://")) or image.lower().endswith((".json", ".geojson"))


def _wanted_bands(image: str, stac_bands: str | None, model_bands: Sequence[str] | None) -> list[str]:
    """The item bands to read: --stac-bands, else the model's band names, one per model band."""
    wanted = [b.strip() for b in stac_bands.split(",") if b.strip()] if stac_bands else list(model_bands or [])
    if not wanted:
        raise ConfigError(f"{image} is STAC JSON: name the item bands to read with --stac-bands, e.g. "
                          "blue,green,red,nir")
    if model_bands is not None and len(wanted) != len(model_bands):
        raise ConfigError(f"--stac-bands {stac_bands!r} names {len(wanted)} band(s) but the model reads "
                          f"{len(model_bands)} {list(model_bands)}; name one item band per model band, in order")
    return wanted


@contextlib.contextmanager
def stac_inputs(inputs: Sequence[str], aoi: str | None, stac_bands: str | None,
                model_bands: Sequence[str]) -> Iterator[list[str]]:
    """Pipeline inputs with each STAC Item or ItemCollection replaced by one VRT per item (cut to --aoi)."""
    if not any(is_stac_reference(i) for i in inputs):
        if aoi or stac_bands:
            raise ConfigError("--aoi and --stac-bands go with a STAC Item or ItemCollection --input (a .json file "
                              "or URL)")
        yield list(inputs)
        return
    from landsight.acquire import require_acquire

    require_acquire()
    from landsight.acquire.area import area_from_geojson
    from landsight.acquire.remote import stac_images

    area = area_from_geojson(aoi) if aoi else None
    with contextlib.ExitStack() as stack:
        expanded: list[str] = []
        for item in inputs:
            if not is_stac_reference(item):
                expanded.append(item)
                continue
            vrts = stack.enter_context(stac_images(item, _wanted_bands(item, stac_bands, model_bands), area,
                                                   labels=list(model_bands)))
            expanded += [str(v) for v in vrts]
        yield expanded


@contextlib.contextmanager
def image_path(image: str, aoi: str | None, stac_bands: str | None,
               model_bands: Sequence[str] | None = None) -> Iterator[str]:
    """`image` itself for a raster; for STAC JSON, a VRT of its bands (--stac-bands, else `model_bands`) cut to
    --aoi, described with the model's band names; GDAL's remote-read settings hold within the block."""
    if not is_stac_reference(image):
        if aoi or stac_bands:
            raise ConfigError("--aoi and --stac-bands go with a STAC Item or ItemCollection as IMAGE (a .json file "
                              "or URL); cut a local raster with gdal_translate -projwin instead")
        yield image
        return
    from landsight.acquire import require_acquire

    require_acquire()
    from landsight.acquire.area import area_from_geojson
    from landsight.acquire.remote import stac_image

    wanted = _wanted_bands(image, stac_bands, model_bands)
    area = area_from_geojson(aoi) if aoi else None
    with stac_image(image, wanted, area, labels=list(model_bands) if model_bands else None) as vrt:
        yield str(vrt)
