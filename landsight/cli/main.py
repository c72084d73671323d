"""The `landsight` command group: logging, version, error handling, command registry."""

from __future__ import annotations

import importlib
import logging
from typing import Any

import click
from rich.logging import RichHandler

from landsight import __version__
from landsight.errors import LandsightError

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
}


class LandsightGroup(click.Group):
    """Loads commands lazily (torch only when a command needs it) and turns library errors into exit code 2."""

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
            return super().invoke(ctx)
        except LandsightError as exc:
            click.secho(f"Error: {exc}", err=True, fg="red")
            ctx.exit(2)


@click.group(cls=LandsightGroup)
@click.version_option(__version__, prog_name="landsight")
@click.option("-v", "--verbose", count=True, help="More log output (repeat for debug).")
@click.option("-q", "--quiet", count=True, help="Less log output.")
def cli(verbose: int, quiet: int) -> None:
    """landsight: turn satellite and aerial imagery into land-use maps."""
    level = max(10, min(50, 20 - 10 * verbose + 10 * quiet))
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(show_path=False, show_time=False)],
                        force=True)
    logging.getLogger("rasterio").setLevel(max(level, logging.WARNING))
