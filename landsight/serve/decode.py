"""Request bodies -> open rasterio datasets in memory, checked against the limits before any pixel is read.

Only the GTiff, PNG and JPEG drivers may open a body, so a body can never name another file (as a VRT could): no
path from a request reaches the file system.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import rasterio
from rasterio.errors import RasterioError
from rasterio.io import DatasetReader, MemoryFile
from rasterio.windows import Window

from landsight.errors import RasterError
from landsight.imagery.bands import BandSpec, check_bands_match
from landsight.imagery.io import read_window
from landsight.serve.config import Limits
from landsight.serve.errors import PayloadTooLarge, Unprocessable, UnsupportedMediaType

DRIVERS = {"image/tiff": "GTiff", "image/geotiff": "GTiff", "image/tiff; application=geotiff": "GTiff",
           "image/png": "PNG", "image/jpeg": "JPEG"}
"""Accepted body media types and the only GDAL driver each may be opened with."""

GDAL_SAFE = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".none",
             "GDAL_HTTP_TIMEOUT": "1"}
"""GDAL settings while a body is open: no sidecar file lookups, no network."""


def driver_for(content_type: str | None) -> str:
    """The GDAL driver for a body's Content-Type; anything else is UnsupportedMediaType."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in DRIVERS:
        raise UnsupportedMediaType(f"Content-Type {content_type or '(none)'!r} is not accepted; send the image as "
                                   "image/tiff (GeoTIFF), image/png or image/jpeg")
    return DRIVERS[media]


@contextlib.contextmanager
def open_body(body: bytes, content_type: str | None, limits: Limits) -> Iterator[DatasetReader]:
    """Open `body` with the driver its Content-Type names; check size, bands and readability before yielding."""
    driver = driver_for(content_type)
    if not body:
        raise Unprocessable("the request body is empty; send the image bytes as the body")
    with rasterio.Env(**GDAL_SAFE), MemoryFile(body) as memfile:
        try:
            src = memfile.open(driver=driver)
        except RasterioError as exc:
            raise Unprocessable(f"the body is not a readable {driver} image ({exc}); check the file and its "
                                "Content-Type") from exc
        with src:
            check_limits(src, limits)
            check_readable(src)
            yield src


def check_limits(src: DatasetReader, limits: Limits) -> None:
    """Refuse images with more pixels or bands than allowed, from the header alone (no pixel is decoded)."""
    pixels = src.width * src.height
    if pixels > limits.max_pixels:
        raise PayloadTooLarge(f"the image is {src.width} x {src.height} = {pixels:,} pixels; this server accepts at "
                              f"most {limits.max_pixels:,}: cut it into smaller pieces")
    if src.count > limits.max_bands:
        raise PayloadTooLarge(f"the image has {src.count} bands; this server accepts at most {limits.max_bands}")


def check_readable(src: DatasetReader) -> None:
    """Read one pixel at the corners and middle rows (cheap) to catch truncated or corrupt bodies early."""
    for row in (0, src.height // 2, src.height - 1):
        for col in (0, src.width - 1):
            try:
                read_window(src, Window(col, row, 1, 1))
            except RasterError as exc:
                raise Unprocessable(f"the image is truncated or corrupt near row {row}: send the whole file") from exc


def check_bands(expected: BandSpec, src: DatasetReader) -> BandSpec:
    """The bands of `src` a model reads, checked as `landsight predict` checks them (422 when they do not fit)."""
    try:
        return check_bands_match(expected, src)
    except RasterError as exc:
        message = re.sub(r"pass `bands` with (\d+) band numbers of this image in the model's order",
                         r"send an image with the model's \1 band(s), in its order", _strip_name(str(exc), src.name))
        raise Unprocessable(message) from exc


def _strip_name(message: str, name: str) -> str:
    """Error text without the in-memory file name (it means nothing to a client)."""
    return message.replace(name, "the image")
