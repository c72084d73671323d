"""A parent process that imports landsight, torch and Beam once, then forks one child per command.

Killed runs and runs under a file-size limit or a read-only mount need a real process of their own; starting a fresh
interpreter costs about 8 s of imports on 2 cores, a fork a few milliseconds. Requests and answers are JSON lines on
stdin / stdout:

    {"op": "spawn", "args": [...], "cwd": DIR, "log": FILE, "fsize": BYTES | null, "mounts": [[KIND, PATH, OPT]],
     "report": FILE | null, "env": {NAME: VALUE}}            -> {"pid": PID}
    {"op": "wait", "pid": PID}                               -> {"rc": EXIT_STATUS}   (negative: killed by a signal)

A child starts its own session (kill it with `os.killpg(pid, SIGKILL)`), writes stdout and stderr to `log`, applies
the file-size limit (SIGXFSZ ignored, so writes fail with EFBIG) and the mounts in a private mount namespace
(`["ro", PATH, ""]` a read-only bind mount of PATH, `["tmpfs", PATH, "size=4k"]` a small tmpfs), sets `env`, runs
`landsight ARGS` and, with `report`, writes the recursive listing of every mount point there (a tmpfs vanishes with
the child). A child that cannot set up its mounts exits with MOUNT_FAILED.
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import resource
import signal
import sys
import traceback
from pathlib import Path

MOUNT_FAILED = 97
_CLONE_NEWNS, _MS_RDONLY, _MS_REMOUNT, _MS_BIND, _MS_REC, _MS_PRIVATE = 0x20000, 1, 32, 4096, 16384, 1 << 18


PRELOAD = ["matplotlib.pyplot", "torch", "timm", "segmentation_models_pytorch", "landsight.cli.main",
           "landsight.predict.raster", "landsight.train.segmentation", "landsight.pipeline.run"]
"""Modules imported before forking (not the pipeline without its extra: its tests skip)."""


def _preload() -> None:
    import matplotlib

    matplotlib.use("Agg")
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            if not name.startswith("landsight.pipeline"):
                raise


def _mount(kind: str, path: str, options: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)

    def check(rc: int) -> None:
        if rc != 0:
            raise OSError(ctypes.get_errno(), f"mount {kind} {path}: {os.strerror(ctypes.get_errno())}")

    check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None))
    target = path.encode()
    if kind == "ro":
        check(libc.mount(target, target, None, _MS_BIND, None))
        check(libc.mount(None, target, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY, None))
    elif kind == "tmpfs":
        check(libc.mount(b"tmpfs", target, b"tmpfs", 0, options.encode()))
    else:
        raise ValueError(f"unknown mount kind {kind!r}")


def _listing(root: str) -> list[str]:
    return sorted(str(p.relative_to(root)) + ("/" if p.is_dir() else "") for p in Path(root).rglob("*"))


def _run(request: dict) -> int:
    """The child: session, output, limits, mounts, then the command; returns its exit status."""
    os.setsid()
    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    mounts = request.get("mounts") or []
    try:
        if mounts and ctypes.CDLL(None, use_errno=True).unshare(_CLONE_NEWNS) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNS) failed")
        for kind, path, options in mounts:
            _mount(kind, path, options)
    except OSError as exc:
        print(f"zygote: cannot set up mounts: {exc}", file=sys.stderr)
        return MOUNT_FAILED
    os.chdir(request["cwd"])
    os.environ.update(request.get("env") or {})
    if request.get("fsize"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (request["fsize"], resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    from landsight.cli.main import cli

    try:
        cli(request["args"], prog_name="landsight")
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # what a real interpreter would do: print the traceback, exit 1
        traceback.print_exc()
        code = 1
    if request.get("report"):
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        Path(request["report"]).write_text(json.dumps({path: _listing(path) for _, path, _ in mounts}))
    return code


def _answer(payload: dict) -> None:
    sys.stdout.write(json.dumps(payload) + "\n")
    sys.stdout.flush()


def main() -> None:
    """Serve spawn and wait requests until stdin closes."""
    _preload()
    _answer({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        if request["op"] == "spawn":
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    code = _run(request)
                finally:
                    sys.stdout.flush()
                    sys.stderr.flush()
                    os._exit(code)
            _answer({"pid": pid})
        elif request["op"] == "wait":
            _, status = os.waitpid(request["pid"], 0)
            _answer({"rc": os.waitstatus_to_exitcode(status)})


if __name__ == "__main__":
    main()
