"""Library errors name settings as `python_name`; the CLI shows them as the flags of the command that ran."""

from __future__ import annotations

import logging
import re
from typing import Any

import click

COMMAND_KEY = "landsight.command"
"""`ctx.meta` key of the command a group last resolved: the leaf command once every group has resolved."""

SETTING = re.compile(r"`([A-Za-z_]\w*)(?:=(True|False))?`")
"""A backticked setting in a library message: `bands`, or `restart=True` / `background=False` for on/off flags."""


class CommandGroup(click.Group):
    """A group that records the command it runs in `ctx.meta`, so that an error can name that command's flags.

    The leaf's own context is gone once its error reaches the top group; the shared `ctx.meta` outlives it.
    """

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None,
                                                                              list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[COMMAND_KEY] = command
        return name, command, rest


class FlagsInLogs(logging.Filter):
    """Writes the backticked settings of a library log message as the flags of the command running now."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = click.get_current_context(silent=True)
        message = record.getMessage()
        if ctx is not None and SETTING.search(message):
            record.msg, record.args = as_flags(message, ctx.command), None
        return True


def ran_command(ctx: click.Context) -> click.Command | None:
    """The leaf command a `CommandGroup` under `ctx` last resolved, if any."""
    command: Any = ctx.meta.get(COMMAND_KEY)
    return command if isinstance(command, click.Command) else None


def as_flags(message: str, command: click.Command | None) -> str:
    """`message` with each backticked option name of `command` written as its flag, as the user would type it.

    "`bands`" -> "--bands"; "`restart=True`" -> "--restart"; "`background=False`" -> "--ignore-unlabelled" (the off
    switch of a --x/--y flag). Names that are not options of `command` stay as they are.

    >>> cmd = click.Command("x", params=[click.Option(["-o", "--output"]), click.Option(["--fast/--slow"])])
    >>> as_flags("`output` exists; set `fast=False` or `other`", cmd)
    '--output exists; set --slow or `other`'
    """
    options = {p.name: p for p in command.params if isinstance(p, click.Option)} if command else {}

    def flag(match: re.Match[str]) -> str:
        option = options.get(match.group(1))
        if option is None:
            return match.group(0)
        if match.group(2) == "False":
            return _long(option.secondary_opts) if option.secondary_opts else match.group(0)
        return _long(option.opts)

    return SETTING.sub(flag, message)


def _long(flags: list[str]) -> str:
    """The first long flag (--output over -o), else the first flag."""
    return next((f for f in flags if f.startswith("--")), flags[0])
