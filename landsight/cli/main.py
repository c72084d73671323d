"""The `landsight` command group: logging, version, error handling, command registry."""

from __future__ import annotations

import importlib
import logging
import signal
import threading
from typing import Any

import click
from rich.logging import RichHandler

from landsight import __version__
from landsight.cli.advice import CommandGroup, FlagsInLogs, as_flags, ran_command
from landsight.errors import LandsightError
from landsight.outputs import WRITE_ERRNOS, guard_inputs

_COMMANDS = {
    "rasterize": "landsight.cli.rasterize:rasterize",
    "dataset": "landsight.cli.dataset:dataset",
    "train": "landsight.cli.train:train",
    "info": "landsight.cli.info:info",
    "predict": "landsight.cli.predict:predict",
    "vectorize": "landsight.cli.vectorize:vectorize",
    "evaluate": "landsight.cli.evaluate:evaluate",
    "demo": "landsight.cli.demo:demo",
    "compare": "landsight.cli.compare:compare",
    "change": "landsight.cli.change:change",
    "pipeline": "landsight.cli.pipeline:pipeline",
    "classify": "landsight.cli.classify:classify",
    "cloud": "landsight.cli.cloud:cloud",
    "export": "landsight.cli.export:export",
    "similar": "landsight.cli.similar:similar",
    "serve": "landsight.cli.serve:serve",
    "cover": "landsight.cli.cover:cover",
    "download": "landsight.cli.download:download",
    "stac": "landsight.cli.stac:stac",
    "tile": "landsight.cli.tile:tile",
    "mosaic": "landsight.cli.tile:mosaic",
}


class LandsightGroup(CommandGroup):
    """Loads commands lazily (torch only when a command needs it), protects each command's inputs from its outputs,
    and turns library errors and failed writes (full disk, read-only, forbidden) into exit code 2; a library error's
    backticked settings become the flags of the command that ran (`bands` -> --bands)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module), attr)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with guard_inputs():
                return super().invoke(ctx)
        except LandsightError as exc:
            click.secho(f"Error: {as_flags(str(exc), ran_command(ctx))}", err=True, fg="red")
            ctx.exit(2)
        except OSError as exc:
            if exc.errno not in WRITE_ERRNOS:
                raise
            where = f" {exc.filename}" if exc.filename else ""
            click.secho(f"Error: cannot write{where}: {WRITE_ERRNOS[exc.errno]} ({exc.strerror}); free space or "
                        "choose a writable output location", err=True, fg="red")
            ctx.exit(2)


@click.group(cls=LandsightGroup)
@click.version_option(__version__, prog_name="landsight")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", count=True, help="Less log output.")
def cli(verbose: int, quiet: int) -> None:
    """landsight: turn satellite and aerial imagery into land-use maps."""
    if hasattr(signal, "SIGXFSZ") and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past a file-size limit a write fails (EFBIG), not the process
    level = max(10, min(50, 20 - 10 * verbose + 10 * quiet))
    handler = RichHandler(show_path=False, show_time=False)
    handler.addFilter(FlagsInLogs())  # library warnings name settings (`bands`); show the command's flags
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)
    for name in ("rasterio", "pyogrio"):  # their INFO lines ("Created N records") are not landsight's report
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
