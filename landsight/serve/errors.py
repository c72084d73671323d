"""Errors a request can cause, each with the HTTP status it is answered with (as a JSON body saying what to fix)."""

from __future__ import annotations

from landsight.errors import LandsightError


class RequestError(LandsightError, ValueError):
    """A request the server refuses; `status` is the HTTP status code of the answer."""

    status = 400


class Unauthorized(RequestError):
    """No bearer token, or not the configured one."""

    status = 401


class NotFound(RequestError):
    """Unknown model, source or tile."""

    status = 404


class NotAcceptable(RequestError):
    """The requested answer format cannot be produced for this model."""

    status = 406


class PayloadTooLarge(RequestError):
    """Body larger than the limit, or an image with more pixels than the limit."""

    status = 413


class UnsupportedMediaType(RequestError):
    """A body that is not GeoTIFF, PNG or JPEG."""

    status = 415


class Unprocessable(RequestError):
    """A body of the right type that cannot be used: truncated, corrupt, wrong bands."""

    status = 422


class Overloaded(RequestError):
    """The inference queue is full; try again after `retry_after` seconds."""

    status = 503
    retry_after = 1


class RequestTimeout(RequestError):
    """The request took longer than the server's limit."""

    status = 504
