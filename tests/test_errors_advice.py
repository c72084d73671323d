"""Library messages name settings as `python_name`, never a CLI flag; the CLI shows the flags of the command run."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

import landsight
from landsight.cli.advice import FlagsInLogs, as_flags
from landsight.cli.main import cli

PACKAGE = Path(landsight.__file__).parent
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*(?![\w=])")
"""A flag as a message would name it; `--x=value` and `--x_y` are other programs' (Beam's) flags."""
COMMAND_SPAN = re.compile(r"`[^`]* [^`]*`")
"""A backticked command line (`landsight cover --zoom Z`, `rio edit-info --crs ...`): naming a command may stay."""
NOT_OURS = {("pipeline/run.py", "--streaming")}
"""Beam's own --streaming, passed to Beam's PipelineOptions."""


def _commands(group: click.Group, ctx: click.Context) -> Iterator[click.Command]:
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, ctx)
        elif command is not None:
            yield command


def _cli_flags() -> set[str]:
    ctx = click.Context(cli)
    return {flag for command in _commands(cli, ctx) for param in command.params if isinstance(param, click.Option)
            for flag in param.opts + param.secondary_opts if flag.startswith("--")}


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of docstring nodes: the first statement of a module, class or function, and attribute docstrings."""
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        for statement in body if isinstance(body, list) else []:
            if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
                found.add(id(statement.value))
    return found


def _texts(tree: ast.AST) -> Iterator[tuple[int, str]]:
    """(line, text) of every string that is not a docstring; f-strings joined with {} for their values."""
    skip = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            skip.update(id(part) for part in node.values)
            yield node.lineno, "".join(p.value if isinstance(p, ast.Constant) else "{}" for p in node.values)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node.lineno, node.value


def _flags_in_library(flags: set[str]) -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith("cli/"):
            continue
        for line, text in _texts(ast.parse(path.read_text(encoding="utf-8"))):
            for flag in FLAG.findall(COMMAND_SPAN.sub("", text)):
                if flag in flags and (relative, flag) not in NOT_OURS:
                    found.append(f"landsight/{relative}:{line}: {flag} in {text!r}")
    return found


def test_library_messages_name_no_cli_flag() -> None:
    flags = _cli_flags()
    assert {"--bands", "--chip-size", "--restart", "--overwrite"} <= flags
    found = _flags_in_library(flags)
    assert not found, "name the Python setting in backticks (`chip_size`), not the flag:\n" + "\n".join(found)


def test_as_flags_uses_the_options_of_the_command() -> None:
    command = click.Command("x", params=[click.Option(["-o", "--output"]), click.Option(["--chip-size"]),
                                         click.Option(["--background/--ignore-unlabelled"]),
                                         click.Option(["--restart"], is_flag=True), click.Argument(["image"])])
    text = ("`chip_size` 512 is too large; set `restart=True` or `restart`, `background=False`, `background=True`; "
            "`output`, `image`, `bands` and `restart=False` stay; `landsight train` too")
    assert as_flags(text, command) == (
        "--chip-size 512 is too large; set --restart or --restart, --ignore-unlabelled, --background; "
        "--output, `image`, `bands` and `restart=False` stay; `landsight train` too")
    assert as_flags(text, None) == text


def test_log_messages_name_the_flags_of_the_running_command() -> None:
    import logging

    records: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())  # type: ignore[method-assign]
    handler.addFilter(FlagsInLogs())
    log = logging.getLogger("landsight.test_advice")
    log.addHandler(handler)
    try:
        with click.Context(click.Command("x", params=[click.Option(["--bands"])])):
            log.warning("leave band %s out with `bands`", 4)
        log.warning("outside a command `bands` stays")
    finally:
        log.removeHandler(handler)
    assert records == ["leave band 4 out with --bands", "outside a command `bands` stays"]


@pytest.fixture()
def four_band_image(tmp_path: Path) -> Path:
    """A 4-band raster: the wrong input for a model trained on 3 bands."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    path = tmp_path / "four.tif"
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=4, dtype="uint8", crs="EPSG:32618",
                       transform=from_origin(500000, 4000000, 1, 1)) as dst:
        dst.write(np.zeros((4, 8, 8), dtype="uint8"))
    return path


def test_the_api_names_the_setting(four_band_image: Path) -> None:
    from landsight.acquire.area import parse_bbox
    from landsight.acquire.cover import xyz_cover
    from landsight.errors import LandsightError
    from landsight.imagery.bands import BandSpec, check_bands_match, parse_band_indexes
    from landsight.imagery.io import open_raster
    from landsight.outputs import check_output

    expected = BandSpec((1, 2, 3), ("red", "green", "blue"), 3)
    with open_raster(four_band_image) as src, pytest.raises(LandsightError, match="pass `bands` with 3 band numbers"):
        check_bands_match(expected, src)
    with pytest.raises(LandsightError, match=r"^`bands` '0': band numbers start at 1"):
        parse_band_indexes("0")
    with pytest.raises(LandsightError, match=r"^`zoom` 25 is outside"):
        xyz_cover(parse_bbox("-75.7,37.5,-75.6,37.6"), 25)
    with pytest.raises(LandsightError, match="pass `overwrite=True` to replace it"):
        check_output(four_band_image, overwrite=False)


@pytest.mark.parametrize("args, shown", [
    (["cover", "--bbox", "-75.7,37.5,-75.6,37.6", "--zoom", "25", "-o", "{tmp}/c"], "Error: --zoom 25 is outside"),
    (["cover", "--bbox", "-75.7,37.5,-75.6,37.6", "--grid-crs", "999999", "--grid-size", "100", "-o", "{tmp}/c"],
     "Error: --grid-crs 999999 is not a known EPSG code"),  # library `epsg` is the command's --grid-crs
    (["predict", "{tmp}/model.pt", "{image}", "-o", "{tmp}/out.tif", "--bands", "0"],
     "Error: --bands '0': band numbers start at 1"),
    (["tile", "{image}", "--zoom", "10", "-o", "{tmp}/exists"], "pass --overwrite to replace it"),
])
def test_the_cli_names_the_flag(runner: click.testing.CliRunner, tmp_path: Path, four_band_image: Path,
                                args: list[str], shown: str) -> None:
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "keep").write_text("x")
    result = runner.invoke(cli, [a.format(tmp=tmp_path, image=four_band_image) for a in args])
    assert result.exit_code == 2, result.output
    assert shown in result.output and "`" not in result.output.split("Error:")[1], result.output
