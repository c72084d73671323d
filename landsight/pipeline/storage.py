"""Where the pipeline's files live: a local folder, or an object store named by an fsspec URL (`s3://bucket/out`,
`gs://...`, `memory://...`). Every pipeline write and read of its own files goes through here.

Writes are atomic on both: a local file is written under a hidden temporary name and renamed
(`landsight.outputs.atomic_path`); an object is uploaded under a hidden temporary key beside its final key, then
copied onto the final key and the temporary deleted, so no reader ever sees a partial object under a final key.
Writers that need a local file (GDAL for the COG, pyogrio for polygons) write into a local temporary folder first
(`write_via`); files the pipeline reads back (its masks) are downloaded (`local_copy`).

S3 credentials come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, ...; botocore's own variables
and files) and are never logged. GDAL's endpoint variables, which input rasters (`/vsis3/`) use, apply here too:
AWS_S3_ENDPOINT (host:port) with AWS_HTTPS=NO for plain HTTP, and AWS_VIRTUAL_HOSTING=FALSE for path-style
addressing, unless botocore's AWS_ENDPOINT_URL(_S3) is set.
"""

from __future__ import annotations

import contextlib
import io
import os
import posixpath
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from landsight.errors import ConfigError, MissingExtraError, OutputError, OutputExistsError
from landsight.outputs import OUTPUT_MARKER, atomic_path, marker_text, output_folder, remove_stale_temporaries
from landsight.paths import check_plain_name, child_path

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_TEMPORARY_KEY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[^.]+\.part")
"""A temporary object of `_upload` (same shape as the local temporaries of `landsight.outputs`)."""


def is_url(location: str | Path) -> bool:
    """True for an fsspec URL (`s3://...`); local paths and `file://` URLs are local."""
    text = str(location)
    return bool(_URL.match(text)) and not text.startswith("file://")


def _local(location: str | Path) -> Path:
    text = str(location)
    return Path(text[len("file://"):] if text.startswith("file://") else text)


def s3_options(environ: Mapping[str, str]) -> dict[str, Any]:
    """s3fs options that make GDAL's S3 endpoint variables (AWS_S3_ENDPOINT, AWS_HTTPS, AWS_VIRTUAL_HOSTING) apply
    to fsspec too; botocore's AWS_ENDPOINT_URL(_S3), when set, wins. Credentials are left to botocore.

    >>> s3_options({"AWS_S3_ENDPOINT": "127.0.0.1:9000", "AWS_HTTPS": "NO"})
    {'use_listings_cache': False, 'endpoint_url': 'http://127.0.0.1:9000'}
    """
    options: dict[str, Any] = {"use_listings_cache": False}  # other workers write the same folder
    endpoint = environ.get("AWS_S3_ENDPOINT")
    if endpoint and not (environ.get("AWS_ENDPOINT_URL_S3") or environ.get("AWS_ENDPOINT_URL")):
        scheme = "http" if environ.get("AWS_HTTPS", "YES").upper() in ("NO", "FALSE", "OFF", "0") else "https"
        options["endpoint_url"] = endpoint if "://" in endpoint else f"{scheme}://{endpoint}"
    if environ.get("AWS_VIRTUAL_HOSTING", "").upper() in ("NO", "FALSE", "OFF", "0"):
        options["config_kwargs"] = {"s3": {"addressing_style": "path"}}
    return options


def _filesystem(url: str) -> tuple[Any, str]:
    """(fsspec file system, path inside it) of `url`."""
    try:
        import fsspec.core
    except ImportError as exc:
        raise MissingExtraError(f"{url} is in an object store, which needs fsspec: "
                                "pip install 'landsight[s3]'") from exc
    protocol = url.split("://", 1)[0].lower()
    options = s3_options(os.environ) if protocol in ("s3", "s3a") else {}
    try:
        fs, path = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        raise MissingExtraError(f"{url} needs the fsspec driver of {protocol}:// ({exc}); for S3: pip install "
                                "'landsight[s3]'") from exc
    return fs, path


def child(folder: str | Path, name: str) -> str:
    """`folder`/`name` for a plain file name (see `landsight.paths.child_path`, which also checks local links)."""
    if not is_url(folder):
        return str(child_path(_local(folder), name))
    check_plain_name(name, str(folder))
    return f"{str(folder).rstrip('/')}/{name}"


def name_of(location: str | Path) -> str:
    """The last component of a path or URL."""
    return posixpath.basename(str(location).rstrip("/"))


def exists(location: str | Path) -> bool:
    """True if the file or object exists."""
    if not is_url(location):
        return _local(location).exists()
    fs, path = _filesystem(str(location))
    return bool(fs.exists(path))


def read_bytes(location: str | Path) -> bytes:
    """The whole file or object (OSError, FileNotFoundError included, when it cannot be read)."""
    if not is_url(location):
        return _local(location).read_bytes()
    fs, path = _filesystem(str(location))
    data: bytes = fs.cat_file(path)
    return data


def read_text(location: str | Path) -> str:
    """The whole file or object as UTF-8 text."""
    return read_bytes(location).decode("utf-8")


def listing(folder: str | Path, pattern: str = "*") -> list[str]:
    """Files directly in `folder` whose names match the glob `pattern`, sorted (none if `folder` is missing)."""
    if not is_url(folder):
        return sorted(str(p) for p in _local(folder).glob(pattern) if p.is_file())
    fs, path = _filesystem(str(folder))
    protocol = str(folder).split("://", 1)[0]
    try:
        found = fs.glob(f"{path.rstrip('/')}/{pattern}", detail=True)
    except OSError as exc:
        raise ConfigError(f"cannot list {folder}/{pattern} ({type(exc).__name__}: {exc}); check the bucket name, "
                          "the endpoint and the credentials in the environment") from exc
    return sorted(f"{protocol}://{p}" for p, info in found.items() if info.get("type") == "file")


def remove(location: str | Path) -> None:
    """Delete a file or object if it exists."""
    if not is_url(location):
        _local(location).unlink(missing_ok=True)
        return
    fs, path = _filesystem(str(location))
    with contextlib.suppress(FileNotFoundError):
        fs.rm_file(path)


def remove_tree(folder: str | Path) -> int:
    """Delete a folder (every object under a prefix) if it exists; returns 1 if something was there, else 0."""
    if not is_url(folder):
        if not _local(folder).exists():
            return 0
        shutil.rmtree(_local(folder), ignore_errors=True)
        return 1
    fs, path = _filesystem(str(folder))
    if not fs.exists(path):
        return 0
    with contextlib.suppress(FileNotFoundError):
        fs.rm(path, recursive=True)
    return 1


def write_bytes(location: str | Path, data: bytes) -> None:
    """Write `data` atomically, replacing what is there."""
    if not is_url(location):
        with atomic_path(_local(location), overwrite=True) as tmp:
            tmp.write_bytes(data)
        return
    with tempfile.TemporaryDirectory(prefix="landsight-upload-") as folder:
        local = Path(folder) / name_of(location)
        local.write_bytes(data)
        _upload(local, str(location))


def write_text(location: str | Path, text: str) -> None:
    """Write UTF-8 `text` atomically, replacing what is there."""
    write_bytes(location, text.encode("utf-8"))


@contextlib.contextmanager
def write_via(location: str | Path) -> Iterator[Path]:
    """Yield a local path for a writer that writes atomically itself (with `overwrite`): `location` itself when
    local; for an object, a file of the same name in a local temporary folder, uploaded atomically when the block
    succeeds (a COG has to be written by GDAL on a local disk first)."""
    if not is_url(location):
        yield _local(location)
        return
    with tempfile.TemporaryDirectory(prefix="landsight-upload-") as folder:
        local = Path(folder) / name_of(location)
        yield local
        _upload(local, str(location))


@contextlib.contextmanager
def local_copy(location: str | Path) -> Iterator[Path]:
    """Yield a local path holding `location`'s content: itself when local, else a downloaded temporary copy."""
    if not is_url(location):
        yield _local(location)
        return
    fs, path = _filesystem(str(location))
    with tempfile.TemporaryDirectory(prefix="landsight-download-") as folder:
        local = Path(folder) / name_of(location)
        fs.get_file(path, str(local))
        yield local


def _upload(local: Path, url: str) -> None:
    """Upload `local` to a hidden temporary key beside `url`, copy it onto `url`, delete the temporary."""
    fs, path = _filesystem(url)
    parent, name = posixpath.split(path.rstrip("/"))
    suffix = posixpath.splitext(name)[1]
    temporary = f"{parent}/.{name}.{os.getpid()}-{uuid.uuid4().hex[:12]}.part{suffix}"
    try:
        fs.put_file(str(local), temporary)
        fs.copy(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            fs.rm_file(temporary)


def remove_temporaries(folder: str | Path) -> int:
    """Remove the temporaries that interrupted writes left directly in `folder`; returns how many. Locally only
    those of processes that are gone; in an object store every one (one run per output folder at a time)."""
    if not is_url(folder):
        return len(remove_stale_temporaries(_local(folder)))
    fs, path = _filesystem(str(folder))
    removed = 0
    for key in fs.glob(f"{path.rstrip('/')}/.*.part*"):
        if _TEMPORARY_KEY.match(posixpath.basename(key)):
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(key)
            removed += 1
    return removed


def make_output_folder(folder: str | Path, inputs: list[str]) -> None:
    """Create, or reuse to resume, the pipeline's output folder (see `landsight.outputs.output_folder`): in an
    object store, an empty prefix or one holding landsight's output marker."""
    if not is_url(folder):
        output_folder(_local(folder), inputs)
        return
    fs, path = _filesystem(str(folder))
    marker = child(folder, OUTPUT_MARKER)
    try:
        if not exists(marker) and fs.exists(path) and fs.ls(path):
            raise OutputExistsError(f"{folder} holds objects but no {OUTPUT_MARKER}, so no landsight command wrote "
                                    "it; choose a new or empty prefix for `out_dir`")
        if not exists(marker):
            write_text(marker, marker_text())
    except OSError as exc:
        if isinstance(exc, OutputExistsError):
            raise
        raise OutputError(f"cannot write to {folder} ({type(exc).__name__}: {exc}); check the bucket name, the "
                          "endpoint and the credentials in the environment") from exc


def save_array(location: str | Path, array: np.ndarray) -> None:
    """Write a numpy array as .npy, atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_bytes(location, buffer.getvalue())


def load_array(location: str | Path) -> np.ndarray:
    """Read a .npy array written by `save_array` (never pickles)."""
    return np.load(io.BytesIO(read_bytes(location)), allow_pickle=False)
