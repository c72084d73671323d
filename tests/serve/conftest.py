"""Serve tests: a quickly trained model, and the real server (uvicorn) on 127.0.0.1 at a free port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.windows import Window

from landsight.cli.main import cli

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'landsight[serve]'")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'landsight[serve]'")

SAMPLE = Path(__file__).parent.parent.parent / "landsight" / "sample_data"
TOKEN = "test-token-0123456789abcdef"


def run(*args: object):
    """`landsight ARGS...` through click's runner."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="session")
def quick_model(atlanta_model) -> Path:
    """The session's small building model (tests/conftest.py)."""
    return atlanta_model


@pytest.fixture(scope="session")
def crop(tmp_path_factory) -> Path:
    """A 256 x 256 GeoTIFF cut from the Atlanta sample (1 band, uint16, nodata 0)."""
    out = tmp_path_factory.mktemp("serve-data") / "crop.tif"
    write_crop(SAMPLE / "atlanta.tif", out, Window(100, 200, 256, 256))
    return out


def write_crop(src_path: Path, out: Path, window: Window) -> Path:
    """Copy `window` of a raster into its own GeoTIFF."""
    with rasterio.open(src_path) as src:
        data = src.read(window=window)
        profile = src.profile | {"width": int(window.width), "height": int(window.height),
                                 "transform": src.window_transform(window)}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """Serve `app` with uvicorn on 127.0.0.1 (a port the OS picks) in a thread; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()
        assert not thread.is_alive(), "the server did not stop"


def read_tif(data: bytes, path: Path) -> tuple[np.ndarray, dict]:
    """Pixels and profile of GeoTIFF bytes (written to `path` first)."""
    path.write_bytes(data)
    with rasterio.open(path) as src:
        return src.read(), src.profile
