"""`landsight serve`: models over HTTP with seamless map tiles, dynamic batching and limits (FastAPI + uvicorn)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from landsight.cli import options
from landsight.errors import ConfigError, MissingExtraError

log = logging.getLogger(__name__)


@click.command()
@click.argument("models", nargs=-1, required=True, type=options.InputPath(dir_okay=False))
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but 127.0.0.1 exposes the server to the network.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True, help="TCP port.")
@click.option("--token-file", type=options.InputPath(exists=True, dir_okay=False), default=None,
              help="File holding a bearer token that every /v1 request must send.")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True,
              help="torch: MODEL files; onnx: files from `landsight export` run by ONNX Runtime (CPU).")
@options.device_opt
@click.option("--source", "sources", multiple=True, metavar="NAME=RASTER",
              help="A local raster (e.g. a COG) to serve tiles of; repeatable.")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes (each loads every model).")
@options.window_opt
@options.overlap_opt
@click.option("--max-batch", type=click.IntRange(1, 256), default=8, show_default=True,
              help="Windows per forward pass across concurrent requests (1: no dynamic batching).")
@click.option("--max-wait-ms", type=options.FiniteFloatRange(0, 1000), default=5.0, show_default=True,
              help="How long a forward pass waits for its batch to fill.")
@click.option("--max-queue", type=click.IntRange(1, 100_000), default=64, show_default=True,
              help="Windows waiting per model before requests are answered 503.")
@click.option("--max-requests", type=click.IntRange(1, 10_000), default=64, show_default=True,
              help="Predict requests worked on at once; more are answered 503.")
@click.option("--max-body-mb", type=options.FiniteFloatRange(0.001, 4096), default=64, show_default=True,
              help="Largest request body in MiB (413 beyond).")
@click.option("--max-pixels", type=click.IntRange(1), default=4096 * 4096, show_default=True,
              help="Largest image in pixels (413 beyond, checked from the header).")
@click.option("--max-bands", type=click.IntRange(1, 4096), default=32, show_default=True, help="Most bands.")
@click.option("--timeout", "timeout_s", type=options.FiniteFloatRange(0.1, 3600), default=60, show_default=True,
              help="Seconds a request may take (504 beyond).")
@click.option("--tile-cache", type=click.IntRange(0), default=512, show_default=True,
              help="Tiles kept in memory (about 64 KiB each).")
def serve(models: tuple[str, ...], host: str, port: int, token_file: str | None, backend: str, device: str,
          sources: tuple[str, ...], workers: int, window: int, overlap: int, max_batch: int, max_wait_ms: float,
          max_queue: int, max_requests: int, max_body_mb: float, max_pixels: int, max_bands: int, timeout_s: float,
          tile_cache: int) -> None:
    """Serve MODEL files over HTTP: POST /v1/models/NAME/predict, XYZ tiles, a map page at /.

    A MODEL may be given as NAME=PATH; its name is otherwise the file name without extension.
    """
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingExtraError("landsight serve needs the serve extra: pip install 'landsight[serve]'") from exc
    from landsight.serve import Batching, Limits, ServeConfig, create_app
    from landsight.serve.app import ENV_CONFIG
    from landsight.serve.config import model_names, parse_sources

    token = _read_token(token_file) if token_file else None
    config = ServeConfig(
        model_names(models), parse_sources(sources), backend, device, token,
        Limits(int(max_body_mb * 1024 * 1024), max_pixels, max_bands, timeout_s, max_requests),
        Batching(max_batch, max_wait_ms, max_queue), window, overlap, tile_cache)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("binding to %s: the server is reachable from the network%s", host,
                    "" if token else "; consider --token-file")
    if workers > 1:
        os.environ[ENV_CONFIG] = config.to_json()
        uvicorn.run("landsight.serve.app:create_app_from_env", factory=True, host=host, port=port, workers=workers)
    else:
        uvicorn.run(create_app(config), host=host, port=port)


def _read_token(path: str) -> str:
    token = Path(path).read_text(encoding="utf-8").strip()
    if len(token) < 16:
        raise ConfigError(f"--token-file {path}: the token is {len(token)} characters; use at least 16 (e.g. "
                          "`python -c 'import secrets; print(secrets.token_urlsafe(32))' > token.txt`)")
    return token
