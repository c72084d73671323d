"""Beam's own Python job service for `--runner PortableRunner`, started as its own process with its documented flags:
`python -m apache_beam.runners.portability.local_job_service_main --port PORT --staging_dir DIR`.

The job API (the `--job_endpoint`) listens on localhost only (Beam's `LocalJobServicer.get_bind_address`). Beam 2.77
binds the servers it starts per job (artifact staging, the Fn API servers workers connect to) and the worker pool of
`--environment_type=LOOPBACK` to every interface, with no option to change that: run it where those ports are not
reachable from untrusted networks. `local_job_service()` starts it for the duration of a `with` block:

    with local_job_service() as endpoint:
        run_pipeline(inputs, config, "PortableRunner", [f"--job_endpoint={endpoint}", "--environment_type=LOOPBACK"])
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from landsight.errors import ConfigError

JOB_SERVICE_MODULE = "apache_beam.runners.portability.local_job_service_main"
"""Beam's job-service entry point, run with `python -m`."""


def job_service_command(port_file: Path, staging_dir: Path, port: int = 0) -> list[str]:
    """The command that starts Beam's job service on `port` (0: any free one, written to `port_file`)."""
    return [sys.executable, "-m", JOB_SERVICE_MODULE, f"--port={port}", f"--port_file={port_file}",
            f"--staging_dir={staging_dir}"]


@contextlib.contextmanager
def local_job_service(timeout: float = 60.0) -> Iterator[str]:
    """Start Beam's local job service in a subprocess; yield its endpoint ("localhost:PORT"); stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="landsight-jobservice-") as tmp:
        port_file = Path(tmp) / "port"
        log_file = open(Path(tmp) / "log", "w+")
        proc = subprocess.Popen(job_service_command(port_file, Path(tmp) / "staging"), stdout=log_file,
                                stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + timeout
            while not (port_file.exists() and port_file.read_text().strip()):
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_file.seek(0)
                    raise ConfigError(f"Beam's job service did not start within {timeout} s: {log_file.read()[-2000:]}")
                time.sleep(0.1)
            yield f"localhost:{port_file.read_text().strip()}"
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log_file.close()
