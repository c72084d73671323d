"""Errors of area acquisition; all are LandsightErrors, so the CLI exits 2 with their message."""

from __future__ import annotations

from landsight.errors import LandsightError


class AreaError(LandsightError, ValueError):
    """An area (bbox, GeoJSON, raster footprint), zoom or grid is invalid."""


class CoverError(LandsightError, ValueError):
    """A tile cover file is missing, empty or malformed."""


class SourceError(LandsightError, ValueError):
    """A tile or map source (URL template, WMS parameters, server) is unusable."""


class StacError(LandsightError, ValueError):
    """A STAC catalogue, item or asset is unusable: unreachable, malformed, or without the bands a model needs."""
