"""One tile over HTTP: a request-rate limit, a retry policy (exponential backoff with jitter, Retry-After honoured)
and checks that what came back is a whole image of the expected size.

Transient faults (timeouts, connection errors, truncated bodies, 429, 5xx) are retried; the rest (a WMS
ServiceException, an HTML page, a wrong content type or size, other 4xx) fail at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import random
import time
import warnings
from collections.abc import Callable

import httpx
import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.io import MemoryFile
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt


class Fault(Exception):
    """A failed attempt: `kind` is a short code (timeout, http-503, html, ...), `reason` says what happened."""

    def __init__(self, kind: str, reason: str, transient: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.kind, self.reason, self.transient, self.retry_after = kind, reason, transient, retry_after


@dataclasses.dataclass(frozen=True)
class Image:
    """A checked image: the body as received, its pixels (bands, rows, cols) and the format detected from it."""

    body: bytes
    pixels: np.ndarray
    format: str


class RateLimiter:
    """At most `rate` request starts per second, evenly spaced (every attempt, retries included, takes a slot)."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate else 0.0
        self._next = 0.0
        self._clock = clock
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        """Sleep until this caller may start a request."""
        if not self.interval:
            return
        async with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
            if start > now:
                await asyncio.sleep(start - now)


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """Up to `attempts` tries; waits grow from `initial` s by doubling to `maximum` s plus up to `jitter` s;
    a Retry-After of at most `max_retry_after` s is waited out instead."""

    attempts: int = 4
    initial: float = 0.5
    maximum: float = 30.0
    jitter: float = 0.5
    max_retry_after: float = 120.0

    def retrying(self, on_fault: Callable[[Fault, int], None]) -> AsyncRetrying:
        """A tenacity controller applying this policy; `on_fault(fault, attempt)` hears of every failed attempt."""
        def wait(state: RetryCallState) -> float:
            fault = state.outcome.exception() if state.outcome else None
            if isinstance(fault, Fault) and fault.retry_after is not None:
                return fault.retry_after
            return min(self.maximum, self.initial * 2 ** (state.attempt_number - 1)) + random.uniform(0, self.jitter)

        def retry(exc: BaseException) -> bool:
            return isinstance(exc, Fault) and exc.transient and (
                exc.retry_after is None or exc.retry_after <= self.max_retry_after)

        def before_sleep(state: RetryCallState) -> None:
            fault = state.outcome.exception() if state.outcome else None
            if isinstance(fault, Fault):
                on_fault(fault, state.attempt_number)

        return AsyncRetrying(stop=stop_after_attempt(self.attempts), wait=wait, retry=retry_if_exception(retry),
                             before_sleep=before_sleep, reraise=True)


async def get_image(client: httpx.AsyncClient, url: str, size: tuple[int, int], limiter: RateLimiter) -> Image:
    """One GET of `url` through `limiter`; returns the checked image or raises a Fault."""
    await limiter.wait()
    try:
        async with client.stream("GET", url) as response:
            try:
                body = await response.aread()
            except httpx.TransportError as exc:
                raise Fault("truncated", f"body cut off after the headers ({type(exc).__name__}: {exc})",
                            True) from exc
    except httpx.TimeoutException as exc:
        raise Fault("timeout", f"no answer in time ({type(exc).__name__})", True) from exc
    except httpx.TransportError as exc:
        raise Fault("connection", f"connection failed ({type(exc).__name__}: {exc})", True) from exc
    return check_image(response, body, size)


def check_image(response: httpx.Response, body: bytes, size: tuple[int, int]) -> Image:
    """`body` as an Image if `response` is a 200 carrying a whole image of `size` (width, height); else a Fault."""
    status, ctype = response.status_code, response.headers.get("content-type", "").split(";")[0].strip().lower()
    if status == 429 or status >= 500:
        retry_after = _retry_after(response.headers.get("retry-after"))
        wait = f", Retry-After {retry_after:g} s" if retry_after is not None else ""
        raise Fault(f"http-{status}", f"HTTP {status} {response.reason_phrase}{wait}", True, retry_after)
    head = body[:512].lstrip().lower()
    if b"serviceexception" in head or b"exceptionreport" in head:
        raise Fault("service-exception", f"WMS ServiceException instead of an image: {_text(body)}", False)
    if head.startswith((b"<!doctype html", b"<html")) or ctype == "text/html":
        raise Fault("html", f"an HTML page (HTTP {status}) instead of an image", False)
    if status != 200:
        raise Fault(f"http-{status}", f"HTTP {status} {response.reason_phrase}", False)
    if not body:
        raise Fault("empty", "empty body", True)
    if not ctype.startswith("image/"):
        raise Fault("content-type", f"content type {ctype or 'missing'!r} is not an image", False)
    if not _complete(body):
        raise Fault("truncated", f"image cut off: {len(body)} bytes without the format's end marker", True)
    pixels, fmt = _decode(body)
    if (pixels.shape[2], pixels.shape[1]) != size:
        raise Fault("size", f"image is {pixels.shape[2]}x{pixels.shape[1]} px, expected {size[0]}x{size[1]}", False)
    return Image(body, pixels, fmt)


def _complete(body: bytes) -> bool:
    """Whether a PNG ends with its IEND chunk and a JPEG with its EOI marker (decoders fill in what is missing)."""
    if body.startswith(b"\x89PNG\r\n\x1a\n"):
        return body.rstrip(b"\x00").endswith(b"IEND\xaeB`\x82")
    if body.startswith(b"\xff\xd8"):
        return body.rstrip(b"\x00\r\n ").endswith(b"\xff\xd9")
    return True


IMAGE_DRIVERS = ["PNG", "JPEG", "GTiff", "WEBP"]
"""The only GDAL drivers a downloaded body may be opened with: never one (such as VRT) whose file names other files."""


def _decode(body: bytes) -> tuple[np.ndarray, str]:
    try:
        with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO", GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR"):
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with MemoryFile(body) as memfile, memfile.open(driver=IMAGE_DRIVERS) as src:
                return src.read(), src.driver
    except RasterioError as exc:
        raise Fault("truncated", f"not a whole image: it does not decode ({str(exc)[:120]})", True) from exc


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _text(body: bytes, limit: int = 160) -> str:
    """The readable text of an XML/HTML body, tags stripped, shortened."""
    import re

    text = re.sub(rb"<[^>]*>", b" ", body[:4096]).decode("utf-8", "replace")
    return " ".join(text.split())[:limit]
