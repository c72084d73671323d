"""Beam's own Python job service (`local_job_service_main`) on the loopback interface, for `--runner PortableRunner`.

Beam's job service binds its job API to localhost but its artifact-staging and worker (Fn API) servers to every
interface; `python -m landsight.pipeline.jobservice` runs the same service with every gRPC server bound to
localhost. `local_job_service()` starts it in a subprocess for the duration of a `with` block:

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

_ANY = ("[::]:", "0.0.0.0:")


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Inside the block, gRPC servers of this process asked to bind every interface bind localhost instead.

    Use it around a PortableRunner run with `--environment_type=LOOPBACK`, whose worker pool Beam binds to [::].
    """
    import grpc._server

    original = grpc._server._Server.add_insecure_port

    def add_insecure_port(self: object, address: str) -> int:
        for prefix in _ANY:
            if address.startswith(prefix):
                address = "localhost:" + address[len(prefix):]
        port: int = original(self, address)
        return port

    grpc._server._Server.add_insecure_port = add_insecure_port
    try:
        yield
    finally:
        grpc._server._Server.add_insecure_port = original


@contextlib.contextmanager
def local_job_service(timeout: float = 60.0) -> Iterator[str]:
    """Start Beam's local job service on localhost; yield its endpoint ("localhost:PORT"); stop it on exit."""
    with tempfile.TemporaryDirectory(prefix="landsight-jobservice-") as tmp:
        port_file = Path(tmp) / "port"
        log_file = open(Path(tmp) / "log", "w+")
        command = [sys.executable, "-m", "landsight.pipeline.jobservice", "--port_file", str(port_file),
                   "--staging_dir", str(Path(tmp) / "staging")]
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
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


if __name__ == "__main__":
    from apache_beam.runners.portability import local_job_service_main

    with loopback_only():
        local_job_service_main.run(sys.argv[1:])
