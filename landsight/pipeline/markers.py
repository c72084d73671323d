"""Completion markers: KEY.done.json says which job made a raster's outputs; a rerun reuses them only while it
matches the new job exactly (image, model, gate, settings, landsight version, window grid and blend version)."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from landsight import __version__
from landsight.pipeline import storage
from landsight.predict.blend import BLEND_VERSION
from landsight.provenance import utc_now

log = logging.getLogger(__name__)

MARKER_SCHEMA = 2
"""Version of the marker format; markers without one (the first format) are always treated as stale."""


@dataclasses.dataclass(frozen=True)
class JobFacts:
    """What a raster's outputs depend on besides the image and the code: model and gate identity, window scheme,
    bands and polygon settings."""

    model_sha256: str
    gate_sha256: str | None
    window: int
    overlap: int
    batch_size: int
    bands: tuple[int, ...] | None
    polygons: bool
    simplify: float
    min_area: float
    polygon_crs: str | None


@dataclasses.dataclass(frozen=True)
class CompletionMarker:
    """The record written last for a raster: what made its outputs, and when."""

    schema_version: int
    landsight_version: str
    blend_version: int
    image: str
    job: JobFacts
    windows: int
    cloudy: int
    outputs: dict[str, str]
    finished_utc: str

    @classmethod
    def now(cls, image: str, job: JobFacts, windows: int, cloudy: int, outputs: dict[str, str]) -> CompletionMarker:
        """A marker for outputs just finished by this landsight (its version, window grid and blend)."""
        return cls(MARKER_SCHEMA, __version__, BLEND_VERSION, image, job, windows, cloudy, outputs, utc_now())

    def stale_reason(self, image: str, job: JobFacts) -> str | None:
        """Why outputs under this marker cannot be reused for `image` and `job` (None: they can)."""
        current = {"schema_version": MARKER_SCHEMA, "landsight_version": __version__, "blend_version": BLEND_VERSION,
                   "image": image, "job": job}
        for name, value in current.items():
            if getattr(self, name) != value:
                return f"{name} {getattr(self, name)!r} differs from this run's {value!r}"
        return None

    def to_json(self) -> str:
        """Indented JSON text."""
        return json.dumps(dataclasses.asdict(self), indent=1)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompletionMarker:
        """Inverse of `to_json` (after json.loads); raises KeyError or TypeError for other dicts."""
        job = dict(data["job"])
        job["bands"] = tuple(job["bands"]) if job.get("bands") else None
        return cls(**{**data, "job": JobFacts(**job)})


def write_marker(path: str | Path, marker: CompletionMarker) -> None:
    """Write `marker` to `path` (a file or object) atomically, replacing an older one."""
    storage.write_text(path, marker.to_json())


def read_marker(path: str | Path) -> CompletionMarker | None:
    """The marker at `path`; None when missing, unreadable, or of an older format (then it says so at INFO)."""
    try:
        data = json.loads(storage.read_text(path))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("schema_version") != MARKER_SCHEMA:
        log.info("%s is a completion marker of an older landsight (no schema_version %d); recomputing its raster",
                 path, MARKER_SCHEMA)
        return None
    try:
        return CompletionMarker.from_dict(data)
    except (KeyError, TypeError) as exc:
        log.info("%s is not a readable completion marker (%s); recomputing its raster", path, exc)
        return None
