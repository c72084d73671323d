"""Commands' shared handling of remote imagery: a STAC item (+ an area) in place of a raster file."""

from __future__ import annotations

from typing import Any

from landsight.errors import ConfigError


def predict_stac(model: str, image: str, output: str, aoi: str | None, stac_bands: str | None, overlap: int,
                 batch_size: int, device: str, probabilities: bool, overwrite: bool, window: int) -> dict[str, Any]:
    """`predict` on the model's bands of a STAC item, cut to `aoi`, read over HTTP window by window."""
    from landsight.acquire import require_acquire

    require_acquire()
    from landsight.acquire.area import area_from_geojson
    from landsight.acquire.remote import stac_image
    from landsight.models.model_file import load_model_file
    from landsight.outputs import check_output
    from landsight.predict import predict_raster

    check_output(output, overwrite)
    spec = load_model_file(model).bands
    wanted = [b.strip() for b in stac_bands.split(",")] if stac_bands else list(spec.names)
    if len(wanted) != spec.count:
        raise ConfigError(f"--stac-bands {stac_bands!r} names {len(wanted)} band(s) but the model reads {spec.count} "
                          f"{list(spec.names)}; name one item band per model band, in the model's order")
    area = area_from_geojson(aoi) if aoi else None
    with stac_image(image, wanted, area, labels=spec.names) as vrt:
        indexes = list(range(1, spec.count + 1)) if spec.source_count != spec.count else None
        return predict_raster(model, str(vrt), output, overlap, batch_size, device, probabilities, indexes,
                              overwrite, window)
