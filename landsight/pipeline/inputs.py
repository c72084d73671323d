"""Which rasters a pipeline reads: paths, lists, globs, directories, GDAL paths and object-store URLs; or the pattern
streaming watches."""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from pathlib import Path

from landsight.errors import ConfigError
from landsight.pipeline import storage

RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".jp2", ".img")
"""File types taken from a directory given as input."""

GDAL_PREFIXES = {"s3": "/vsis3/", "gs": "/vsigs/"}
"""Object-store URL schemes and the GDAL virtual file systems that read them (credentials from the environment)."""


def is_remote(item: str) -> bool:
    """True for GDAL virtual paths and URLs, which are passed to GDAL as they are."""
    return item.startswith("/vsi") or "://" in item


def expand_inputs(inputs: str | Sequence[str]) -> list[str]:
    """Rasters named by `inputs`: paths, comma-separated lists, globs, directories (their rasters), `@list.txt` files
    (one input per line) and anything GDAL opens (`/vsicurl/...`); local paths become absolute, order is kept."""
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    found: list[str] = []
    for item in (part.strip() for entry in items for part in entry.split(",")):
        if not item:
            continue
        if is_remote(item):
            found += _remote_rasters(item)
        elif item.startswith("@"):
            lines = Path(item[1:]).read_text().splitlines()
            found += expand_inputs([line for line in lines if line.strip() and not line.startswith("#")])
        elif Path(item).is_dir():
            found += sorted(str(p.resolve()) for p in Path(item).iterdir() if p.suffix.lower() in RASTER_SUFFIXES)
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise ConfigError(f"`inputs` {item!r} matches no file; check the pattern")
            found += [str(Path(m).resolve()) for m in matches]
        else:
            found.append(str(Path(item).resolve()))
    if not found:
        raise ConfigError(f"`inputs` {inputs!r} names no raster; pass paths, a glob or a directory")
    return list(dict.fromkeys(found))


def gdal_path(url: str) -> str:
    """The GDAL path of an object-store URL (`s3://b/k.tif` -> `/vsis3/b/k.tif`); other inputs unchanged."""
    scheme, _, rest = url.partition("://")
    prefix = GDAL_PREFIXES.get(scheme.lower()) if rest else None
    return prefix + rest if prefix else url


def _object_url(item: str) -> str | None:
    """The fsspec URL of an object-store input (`/vsis3/b/k` -> `s3://b/k`), or None for other remote inputs."""
    for scheme, prefix in GDAL_PREFIXES.items():
        if item.startswith(prefix):
            return f"{scheme}://{item[len(prefix):]}"
        if item.lower().startswith(f"{scheme}://"):
            return item
    return None


def _remote_rasters(item: str) -> list[str]:
    """A remote input as GDAL paths: an object-store glob or folder (trailing `/`) is listed (its rasters)."""
    url = _object_url(item)
    if url is None or not (glob.has_magic(url) or url.endswith("/")):
        return [gdal_path(url or item)]
    folder, pattern = (url.rstrip("/"), "*") if url.endswith("/") else url.rsplit("/", 1)
    matches = [m for m in storage.listing(folder, pattern) if m.lower().endswith(RASTER_SUFFIXES)]
    if not matches:
        raise ConfigError(f"`inputs` {item!r} matches no raster object; check the bucket, prefix and credentials")
    return [gdal_path(m) for m in matches]


def watch_pattern(inputs: str | Sequence[str]) -> str:
    """The glob to watch in streaming mode: a pattern as given, or DIR/*.tif for a directory."""
    items = [inputs] if isinstance(inputs, str) else list(inputs)
    if len(items) != 1:
        raise ConfigError("`streaming=True` watches one directory or pattern; pass a single one as `inputs`")
    item = items[0]
    return os.path.join(item, "*.tif") if Path(item).is_dir() else item
