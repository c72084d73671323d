"""Files of report folders: summary JSON and vector layers (with their RFC 7946 twins for the review map)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from landsight.labels.vector_out import CrsRequest, feature_collection, write_features
from landsight.labels.vectors import Features
from landsight.paths import child_path


def write_json(path: Path, payload: Any) -> None:
    """Pretty JSON (NaN -> error, so callers pass clean values)."""
    path.write_text(json.dumps(payload, indent=2, allow_nan=False), encoding="utf-8")


def write_layers(folder: Path, layers: dict[str, Features], crs: CrsRequest = None) -> dict[str, dict[str, Any]]:
    """Write each layer as `folder`/NAME.geojson (NAME must be a plain file name) in the CRS `crs` asks for (default
    WGS 84, see `landsight.labels.vector_out`); returns the layers as WGS 84 FeatureCollections for the review map."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, features in layers.items():
        write_features(child_path(folder, f"{name}.geojson"), features, crs)
    return {name: feature_collection(features) for name, features in layers.items()}
