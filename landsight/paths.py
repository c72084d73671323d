"""File names derived from input data (raster stems, class names, chip ids): sanitised and kept inside their folder.

`safe_name` turns any text into one harmless path component; `child_path` joins it to a folder and refuses anything
that would land outside that folder. Use both wherever data, not the user's own output path, names a file.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

from landsight.errors import UnsafePathError

MAX_NAME_CHARS = 100
"""Longer names are cut and get a hash of the full text, so they stay distinct and within file-system limits."""

_UNSAFE = re.compile(r"[^\w.-]+")
"""Anything but letters, digits (any script), `_`, `.` and `-`: separators, NUL, spaces, glob characters..."""


def safe_name(text: str, fallback: str = "unnamed") -> str:
    """`text` as a single, visible file-name component: unsafe characters become `_`, leading dots become `_`
    (no hidden files, no `.` or `..`), empty text becomes `fallback`. The result is also safe in glob patterns.

    >>> safe_name("../../etc/passwd"), safe_name(".."), safe_name("scene 1"), safe_name("")
    ('___.._etc_passwd', '__', 'scene_1', 'unnamed')
    """
    name = _UNSAFE.sub("_", unicodedata.normalize("NFC", text))
    name = re.sub(r"^\.+", lambda m: "_" * len(m.group()), name) or fallback
    if len(name) > MAX_NAME_CHARS:
        digest = hashlib.sha1(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
        name = f"{name[:MAX_NAME_CHARS - 9]}-{digest}"
    return name


def check_plain_name(name: str, folder: str | Path) -> None:
    """Raise UnsafePathError unless `name` is one plain component (not empty, `.`, `..`, no separator or NUL)."""
    if name in ("", ".", "..") or any(c in name for c in "/\\\0"):
        raise UnsafePathError(f"refusing the file name {name!r} derived from input data: it is not a single plain "
                              f"name inside {folder}; sanitise it with landsight.paths.safe_name")


def child_path(folder: str | Path, name: str) -> Path:
    """`folder`/`name`, refusing a `name` that is not one plain component or whose result escapes `folder`
    (through a symbolic link, for instance).

    Raises:
        UnsafePathError: `name` is empty, `.`, `..`, absolute, holds a separator or NUL, or leaves `folder`.
    """
    check_plain_name(name, folder)
    path = Path(folder) / name
    root = Path(folder).resolve()
    if path.resolve().parent != root:
        raise UnsafePathError(f"{path} resolves to {path.resolve()}, outside {root}; remove the link or choose "
                              "another output folder")
    return path
