"""Files of report folders: summary JSON and vector layers (with their RFC 7946 twins for the review map)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from landsight.labels.vector_out import CrsRequest, feature_collection, write_features
from landsight.labels.vectors import Features
from landsight.outputs import atomic_path
from landsight.paths import child_path


class Report(Protocol):
    """A report dataclass: its `to_dict()` starts with the header of `landsight.report.schema`."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, header first."""


def write_json(path: str | Path, payload: Any, overwrite: bool = True) -> None:
    """Pretty JSON (NaN -> error, so callers pass clean values), written atomically; an existing file is replaced
    only with `overwrite` (callers that checked --overwrite for the whole run pass True)."""
    text = json.dumps(payload, indent=2, allow_nan=False) + "\n"
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_report(path: str | Path, report: Report, overwrite: bool = True) -> None:
    """Write `report` (header and body, see `landsight.report.schema`) as JSON at `path`, atomically."""
    write_json(path, report.to_dict(), overwrite)


def write_layers(folder: Path, layers: dict[str, Features], crs: CrsRequest = None) -> dict[str, dict[str, Any]]:
    """Write each layer as `folder`/NAME.geojson (NAME must be a plain file name) in the CRS `crs` asks for (default
    WGS 84, see `landsight.labels.vector_out`); returns the layers as WGS 84 FeatureCollections for the review map."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, features in layers.items():
        write_features(child_path(folder, f"{name}.geojson"), features, crs)
    return {name: feature_collection(features) for name, features in layers.items()}
