"""Response checks and retry waits of one tile fetch (no network)."""

import httpx
import pytest

pytest.importorskip("tenacity")

from landsight.acquire.fetch import Fault, _retry_after, check_image
from tests.servers import Renderer

PNG = Renderer().xyz(18, 75995, 101400)


def _response(status=200, body=b"", ctype="image/png", **headers):
    return httpx.Response(status, content=body, headers={"content-type": ctype, **headers})


@pytest.mark.parametrize("response, kind, transient", [
    (_response(503, b"busy", "text/plain"), "http-503", True),
    (_response(429, b"slow down", "text/plain", **{"retry-after": "7"}), "http-429", True),
    (_response(404, b"missing", "text/plain"), "http-404", False),
    (_response(200, b'<?xml version="1.0"?><ServiceExceptionReport><ServiceException>Layer x not defined'
               b"</ServiceException></ServiceExceptionReport>", "application/vnd.ogc.se_xml"), "service-exception",
     False),
    (_response(200, b"<!DOCTYPE html><html>login</html>", "text/html"), "html", False),
    (_response(200, PNG, "application/octet-stream"), "content-type", False),
    (_response(200, b""), "empty", True),
    (_response(200, PNG[: len(PNG) // 2]), "truncated", True),
])
def test_non_images_are_refused_with_a_kind(response, kind, transient):
    with pytest.raises(Fault) as caught:
        check_image(response, response.content, (256, 256))
    assert (caught.value.kind, caught.value.transient) == (kind, transient)
    if kind == "http-429":
        assert caught.value.retry_after == 7.0 and "Retry-After 7 s" in caught.value.reason
    if kind == "service-exception":
        assert "Layer x not defined" in caught.value.reason


def test_a_whole_image_of_the_wrong_size_is_refused_and_the_right_one_kept():
    with pytest.raises(Fault, match="256x256 px, expected 512x512"):
        check_image(_response(200, PNG), PNG, (512, 512))
    image = check_image(_response(200, PNG), PNG, (256, 256))
    assert image.body == PNG and image.pixels.shape == (3, 256, 256) and image.format == "PNG"


def test_retry_after_values():
    assert _retry_after("3") == 3.0 and _retry_after("-1") == 0.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past: retry now
    assert _retry_after("soon") is None and _retry_after(None) is None


def test_a_vrt_body_never_reads_local_files(tmp_path):
    """A server answering 'image/png' with a VRT must not make landsight read the file the VRT names."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    secret = tmp_path / "secret.tif"
    with rasterio.open(secret, "w", driver="GTiff", width=256, height=256, count=1, dtype="uint8", crs="EPSG:3857",
                       transform=from_origin(0, 256, 1, 1)) as dst:
        dst.write(np.full((1, 256, 256), 42, np.uint8))
    vrt = (f'<VRTDataset rasterXSize="256" rasterYSize="256"><VRTRasterBand dataType="Byte" band="1"><SimpleSource>'
           f'<SourceFilename relativeToVRT="0">{secret}</SourceFilename><SourceBand>1</SourceBand></SimpleSource>'
           f"</VRTRasterBand></VRTDataset>").encode()
    with pytest.raises(Fault):
        check_image(_response(200, vrt), vrt, (256, 256))
