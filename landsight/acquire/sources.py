"""Where tiles come from: an XYZ URL template or a WMS GetMap endpoint; one URL per cover cell, secrets kept out of
reports."""

from __future__ import annotations

import dataclasses
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import mercantile

from landsight.acquire.cover import Cell, GridCell, cell_bounds
from landsight.acquire.errors import SourceError

FORMATS = {"png": "image/png", "jpeg": "image/jpeg", "tif": "image/tiff"}
"""Stored tile format -> the MIME type asked of a WMS."""

_SECRET_KEYS = re.compile(r"(key|token|secret|password|passwd|signature|sig|auth|credential|access)", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


def redact(url: str) -> str:
    """`url` without user:password and with the values of secret-looking query parameters replaced by ***.

    >>> redact("https://u:p@tiles.example/1/2/3.png?api_key=abc&style=x")
    'https://tiles.example/1/2/3.png?api_key=***&style=x'
    """
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = [(k, "***" if _SECRET_KEYS.search(k) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*/:,"), parts.fragment))


def _check_http(url: str, option: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SourceError(f"{option} {redact(url)!r} is not an http(s) URL; pass e.g. "
                          "https://tiles.example.org/{z}/{x}/{y}.png")


@dataclasses.dataclass(frozen=True)
class XyzSource:
    """Tiles from an XYZ URL template with {z}, {x} and {y} ({-y} for TMS row order), `tile_size` pixels square."""

    template: str
    tile_size: int = 256

    def __post_init__(self) -> None:
        _check_http(self.template.replace("{", "").replace("}", ""), "`template`")
        names = set(_PLACEHOLDER.findall(self.template))
        missing = [p for p in ("z", "x") if p not in names] + ([] if names & {"y", "-y"} else ["y"])
        if missing:
            raise SourceError(f"`template` {redact(self.template)!r} lacks "
                              f"{', '.join('{' + m + '}' for m in missing)}; "
                              "a tile URL template needs {z}, {x} and {y}, e.g. https://host/tiles/{z}/{x}/{y}.png")
        unknown = sorted(names - {"z", "x", "y", "-y"})
        if unknown:
            raise SourceError(f"`template` has unknown placeholder(s) {unknown}; only {{z}}, {{x}}, {{y}} and "
                              "{-y} are filled in: write other values out")

    def url(self, cell: Cell) -> str:
        """The URL of XYZ tile `cell`."""
        if isinstance(cell, GridCell):
            raise SourceError("an XYZ source needs an XYZ cover (`landsight cover --zoom Z`); a grid cover "
                              "(`landsight cover --grid-crs EPSG`) needs a WMS source (`url_base`)")
        tile: mercantile.Tile = cell
        values = {"z": tile.z, "x": tile.x, "y": tile.y, "-y": 2**tile.z - 1 - tile.y}
        return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]), self.template)

    def size(self, cell: Cell) -> tuple[int, int]:
        """(width, height) in pixels a tile must have."""
        return self.tile_size, self.tile_size

    def describe(self) -> str:
        """The source for reports, without secrets."""
        return redact(self.template)


@dataclasses.dataclass(frozen=True)
class WmsSource:
    """GetMap requests to a WMS for each cell's bounds in the cell's CRS, `tile_size` pixels square."""

    url_base: str
    layers: str
    styles: str = ""
    time: str | None = None
    version: str = "1.3.0"
    image_format: str = "image/png"
    tile_size: int = 256

    def __post_init__(self) -> None:
        _check_http(self.url_base, "`url_base`")
        if self.version not in ("1.1.1", "1.3.0"):
            raise SourceError(f"`version` {self.version!r} is not supported; use 1.1.1 or 1.3.0")
        if not self.layers.strip():
            raise SourceError("`layers` is empty; pass the WMS layer name(s), comma-separated")

    def url(self, cell: Cell) -> str:
        """The GetMap URL of `cell` (WMS 1.3.0: latitude first for geographic CRSs such as EPSG:4326)."""
        crs, (left, bottom, right, top) = cell_bounds(cell)
        bbox = (left, bottom, right, top)
        if self.version == "1.3.0" and crs.is_geographic:
            bbox = (bottom, left, top, right)
        params = {"SERVICE": "WMS", "VERSION": self.version, "REQUEST": "GetMap", "LAYERS": self.layers,
                  "STYLES": self.styles, ("CRS" if self.version == "1.3.0" else "SRS"): crs.to_string(),
                  "BBOX": ",".join(repr(float(v)) for v in bbox), "WIDTH": str(self.tile_size),
                  "HEIGHT": str(self.tile_size), "FORMAT": self.image_format}
        if self.time:
            params["TIME"] = self.time
        parts = urlsplit(self.url_base)
        keep = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.upper() not in params]
        query = urlencode([*keep, *params.items()], safe="/:,")
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))

    def size(self, cell: Cell) -> tuple[int, int]:
        """(width, height) in pixels a tile must have."""
        return self.tile_size, self.tile_size

    def describe(self) -> str:
        """The source for reports, without secrets."""
        return f"WMS {redact(self.url_base)} layers={self.layers} version={self.version}"


Source = XyzSource | WmsSource
