"""Safe outputs: refuse to overwrite unless asked, never replace what a command did not write, write to a temporary
name and rename only when complete.

Rules every writer follows through `check_output` and `atomic_path`:
- an existing output is replaced only with `overwrite`, a file only by a file, a folder only by a folder that a
  landsight command made (it holds `OUTPUT_MARKER`);
- never the working directory or one of its parents, never an input of the running command or a folder holding one
  (inputs are registered with `register_input` inside a `guard_inputs` block, as the CLI does for every command);
- temporaries are hidden siblings `.<name>.<pid>-<random>.part<suffix>`, removed on failure; those left by a killed
  process are removed by the next write of the same output;
- a full disk, a read-only or forbidden folder or a file-size limit becomes an `OutputError` naming the path.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from landsight import __version__
from landsight.errors import OutputError, OutputExistsError

OUTPUT_MARKER = ".landsight-output"
"""File inside every folder a landsight command writes as a whole; only such folders are ever replaced."""

WRITE_ERRNOS = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is exhausted",
                errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
                errno.EPERM: "operation not permitted", errno.EFBIG: "the file exceeds the allowed file size"}
"""errno values of failed writes that are the user's environment, not a bug, with what they mean."""

_INPUTS: contextvars.ContextVar[tuple[Path, ...] | None] = contextvars.ContextVar("landsight_inputs", default=None)


@contextlib.contextmanager
def guard_inputs() -> Iterator[None]:
    """Within the block, paths passed to `register_input` are protected from every output of the block."""
    token = _INPUTS.set(())
    try:
        yield
    finally:
        _INPUTS.reset(token)


def register_input(path: str | Path) -> None:
    """Protect `path` (an input of the running command) from being written; a no-op outside `guard_inputs`."""
    inputs = _INPUTS.get()
    if inputs is not None:
        _INPUTS.set((*inputs, Path(path).resolve()))


def check_output(path: str | Path, overwrite: bool, directory: bool = False) -> Path:
    """Return `path` as a Path if a command may write it (a folder when `directory`); raise OutputExistsError if not."""
    path = Path(path)
    _refuse_inputs(path)
    if not (path.exists() or path.is_symlink()):
        return path
    if not overwrite:
        raise OutputExistsError(f"{path} already exists; pass `overwrite=True` to replace it or choose another output")
    if path.resolve() in (Path.cwd(), *Path.cwd().parents):
        raise OutputExistsError(f"{path} is the working directory or one of its parents; choose a new output folder")
    if directory and not path.is_dir():
        raise OutputExistsError(f"{path} is a file but this output is a folder; choose another output")
    if not directory and path.is_dir() and not path.is_symlink():
        raise OutputExistsError(f"{path} is a folder but this output is a file; choose another output")
    if directory and not (path / OUTPUT_MARKER).is_file():
        raise OutputExistsError(f"{path} is a folder that no landsight command wrote (it has no {OUTPUT_MARKER}); "
                                "`overwrite` replaces only landsight output folders: choose a new folder")
    return path


def _refuse_inputs(path: Path) -> None:
    """Raise if `path` is an input of the running command or a folder holding one."""
    target = path.resolve()
    for inp in _INPUTS.get() or ():
        if inp == target or target in inp.parents:
            raise OutputExistsError(f"output {path} would replace the input {inp}; inputs are never written: "
                                    "choose another output")


def output_folder(path: str | Path, inputs: Iterable[str | Path] = ()) -> Path:
    """Create, or reuse to resume, a folder that a command fills over time (new, empty, or a landsight output folder).

    Refuses a folder holding `inputs` (or a registered input), the working directory when it holds anything else,
    and any non-empty folder that no landsight command wrote.
    """
    path = Path(path)
    _refuse_inputs(path)
    target = path.resolve()
    for inp in inputs:
        resolved = Path(inp).resolve()
        if target == resolved or target in resolved.parents:
            raise OutputExistsError(f"output folder {path} holds the input {inp}; inputs are never written: choose "
                                    "a folder outside the inputs")
    if path.exists() and not path.is_dir():
        raise OutputExistsError(f"{path} is a file but this output is a folder; choose another output")
    if path.is_dir() and not (path / OUTPUT_MARKER).is_file() and any(path.iterdir()):
        raise OutputExistsError(f"{path} is a non-empty folder that no landsight command wrote (it has no "
                                f"{OUTPUT_MARKER}); choose a new or empty folder")
    with output_errors(path):
        path.mkdir(parents=True, exist_ok=True)
        if not (path / OUTPUT_MARKER).is_file():
            write_marker(path)
    return path


def marker_text() -> str:
    """The content of `OUTPUT_MARKER`."""
    return json.dumps({"landsight_version": __version__}) + "\n"


def write_marker(folder: Path) -> None:
    """Mark `folder` as a landsight output folder (the only kind `overwrite` replaces)."""
    (folder / OUTPUT_MARKER).write_text(marker_text())


@contextlib.contextmanager
def output_errors(path: str | Path) -> Iterator[None]:
    """Turn a failed write under `path` (full disk, read-only, forbidden, too large) into an OutputError."""
    try:
        yield
    except OSError as exc:
        if isinstance(exc, OutputError) or exc.errno not in WRITE_ERRNOS:
            raise
        raise OutputError(f"cannot write {path}: {WRITE_ERRNOS[exc.errno]} ({exc.strerror}); free space or choose "
                          "a writable output location") from exc


@contextlib.contextmanager
def atomic_path(path: str | Path, overwrite: bool = False, directory: bool = False,
                verify: Callable[[Path], None] | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds.

    With `directory`, the temporary path is a new folder holding `OUTPUT_MARKER`. `verify(tmp)` runs before the
    rename and raises if the written file is incomplete. Write errors become OutputError naming `path`.
    """
    final = check_output(path, overwrite, directory)
    tmp: Path | None = None
    try:
        with output_errors(final):
            final.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(final.parent, final.name)
            tmp = _temporary(final)
            if directory:
                tmp.mkdir()
                write_marker(tmp)
            yield tmp
            if verify is not None:
                verify(tmp)
            check_output(final, overwrite, directory)  # the world may have changed while the block ran
            if final.is_dir() and not final.is_symlink():  # a folder: set the old one aside, then delete it
                previous = _temporary(final)
                os.replace(final, previous)
                os.replace(tmp, final)
                _remove(previous)
            else:
                os.replace(tmp, final)
    except OutputError as exc:
        if tmp is None or str(tmp) not in str(exc):
            raise
        raise OutputError(str(exc).replace(str(tmp), str(final))) from exc
    finally:
        if tmp is not None:
            _remove(tmp)


def _temporary(final: Path) -> Path:
    """A new, unused hidden path beside `final` that names this process (see `remove_stale_temporaries`)."""
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.{os.getpid()}-", suffix=f".part{final.suffix}",
                                dir=final.parent)
    os.close(fd)
    os.unlink(name)
    return Path(name)


_TEMPORARY = re.compile(r"\.(?P<name>.+)\.(?P<pid>\d+)-[^.]+\.part")
"""A temporary of `_temporary` (or a file derived from one): `.NAME.PID-RANDOM.part...`."""


def remove_stale_temporaries(folder: Path, name: str | None = None) -> list[Path]:
    """Remove the temporaries in `folder` (of output `name` only, if given), and files derived from them, whose
    writing process is gone; return them. Those of running processes are kept."""
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for entry in folder.iterdir():
            match = _TEMPORARY.match(entry.name)
            if match and (name is None or match["name"] == name) and not _alive(int(match["pid"])):
                _remove(entry)
                removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
