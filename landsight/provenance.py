"""Provenance records for reports: which model, which data (paths and checksums), which parameters, when."""

from __future__ import annotations

import datetime
import hashlib
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from landsight import __version__

_CHUNK = 1 << 20


def utc_now() -> str:
    """The current UTC time in ISO format (seconds), or `SOURCE_DATE_EPOCH` when set, so that reruns and rebuilds
    give byte-identical files (the reproducible-builds convention)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    moment = (datetime.datetime.fromtimestamp(int(epoch), datetime.UTC) if epoch.isdigit()
              else datetime.datetime.now(datetime.UTC))
    return moment.isoformat(timespec="seconds")


def file_digest(path: str | Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def describe_input(path: str | Path, **extra: Any) -> dict[str, Any]:
    """Path, size and checksum of an input file, plus any `extra` facts (raster tags, CRS...)."""
    path = Path(path)
    record: dict[str, Any] = {"path": str(path.resolve())}
    if path.is_file():
        record.update(bytes=path.stat().st_size, sha256=file_digest(path))
    record.update(extra)
    return record


def provenance(inputs: Mapping[str, dict[str, Any]], parameters: Mapping[str, Any],
               model: str | dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance block of a report: `model` (path, or facts such as arch and sha256 read from a prediction's
    tags; None when unknown or no model was involved), `inputs`
    (from `describe_input`), `parameters`, the UTC creation time and the software versions."""
    return {
        "created_utc": utc_now(),
        "model": model,
        "inputs": dict(inputs),
        "parameters": {k: (str(v) if isinstance(v, Path) else v) for k, v in parameters.items()},
        "software": {"landsight": __version__, "python": platform.python_version()},
    }
