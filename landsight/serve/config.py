"""Server settings: models, sources, limits and batching, as one frozen value built by the CLI or by Python code."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from landsight.errors import ConfigError
from landsight.predict.raster import DEFAULT_OVERLAP, DEFAULT_WINDOW, check_window

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""Model and source names: what may appear in a URL path segment."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one request may cost. Sizes in bytes and pixels; times in seconds."""

    max_body_bytes: int = 64 * 1024 * 1024
    max_pixels: int = 4096 * 4096
    max_bands: int = 32
    timeout_s: float = 60.0
    max_requests: int = 64
    """Predict requests worked on at once (each holds its decoded image); more are answered 503."""


@dataclasses.dataclass(frozen=True)
class Batching:
    """Dynamic batching: up to `max_batch` windows of one model in one forward pass, waiting at most `max_wait_ms`
    for the batch to fill; at most `max_queue` windows wait, beyond that requests are refused with 503."""

    max_batch: int = 8
    max_wait_ms: float = 5.0
    max_queue: int = 64


@dataclasses.dataclass(frozen=True)
class ServeConfig:
    """Everything `create_app` needs. `models` and `sources` map URL names to files (local paths only)."""

    models: dict[str, str]
    sources: dict[str, str] = dataclasses.field(default_factory=dict)
    backend: str = "torch"
    device: str = "auto"
    token: str | None = None
    limits: Limits = Limits()
    batching: Batching = Batching()
    window: int = DEFAULT_WINDOW
    overlap: int = DEFAULT_OVERLAP
    tile_cache: int = 512

    def __post_init__(self) -> None:
        check_window(self.window, self.overlap)
        if self.backend not in ("torch", "onnx"):
            raise ConfigError(f"`backend` {self.backend!r}: use torch or onnx")
        if not self.models:
            raise ConfigError("no model to serve; pass at least one MODEL file")
        for value, flag in ((self.batching.max_batch, "`max_batch`"), (self.batching.max_queue, "`max_queue`"),
                            (self.limits.max_pixels, "`max_pixels`"), (self.limits.max_bands, "`max_bands`"),
                            (self.limits.max_body_bytes, "`max_body_bytes`"),
                            (self.limits.max_requests, "`max_requests`")):
            if value < 1:
                raise ConfigError(f"{flag} {value} must be at least 1")
        if self.batching.max_wait_ms < 0 or self.limits.timeout_s <= 0:
            raise ConfigError("`max_wait_ms` must be >= 0 and `timeout_s` positive")
        if self.tile_cache < 0:
            raise ConfigError(f"`tile_cache` {self.tile_cache} must be >= 0")

    def to_json(self) -> str:
        """JSON form, e.g. to hand the settings to uvicorn worker processes."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        """Inverse of `to_json`."""
        data: dict[str, Any] = json.loads(text)
        return cls(**{**data, "limits": Limits(**data["limits"]), "batching": Batching(**data["batching"])})


def check_name(name: str, what: str) -> str:
    """A model or source name usable in URLs: letters, digits, `_`, `.` and `-`."""
    if not _NAME.match(name):
        raise ConfigError(f"{what} name {name!r} must be 1-64 letters, digits, '_', '.' or '-' (starting with a "
                          "letter or digit); rename the file or pass NAME=PATH")
    return name


def model_names(paths: Sequence[str]) -> dict[str, str]:
    """URL names for MODEL arguments: NAME=PATH, or the file's stem; names must be unique."""
    names: dict[str, str] = {}
    for item in paths:
        name, _, path = item.partition("=") if "=" in item else (Path(item).stem, "=", item)
        if check_name(name, "model") in names:
            raise ConfigError(f"two models are named {name!r}; pass NAME=PATH to name them apart")
        names[name] = path
    return names


def parse_sources(items: Sequence[str]) -> dict[str, str]:
    """NAME=RASTER texts (the server's image sources) as {name: path}."""
    sources: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or not path:
            raise ConfigError(f"`sources` {item!r}: use NAME=RASTER, e.g. city=city.tif")
        if check_name(name, "source") in sources:
            raise ConfigError(f"`sources` {name!r} is given twice")
        sources[name] = path
    return sources
