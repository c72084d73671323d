"""`landsight cloud train | filter`: the clear/cloudy gate that runs before segmentation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from landsight.cli import options
from landsight.cli.advice import CommandGroup
from landsight.cli.classify import data_options, run_training, search_options
from landsight.imagery.bands import parse_band_indexes


@click.group(cls=CommandGroup)
def cloud() -> None:
    """Cloud gate: train a clear/cloudy chip classifier; filter rasters or chips with it."""


@cloud.command()
@click.argument("data", type=options.InputPath())
@data_options
@search_options
def train(data: str, **kw: Any) -> None:
    """Train a cloud gate on DATA: a raster with --cloud-mask (a QA band or 0/1 mask), or folders clear/ and cloudy/.

    Classes are clear and cloudy; a chip is cloudy when cloud covers at least --cloudy-if of it (any cloud type
    counts, as in the Planet Amazon labels)."""
    run_training(data, "cloud", **kw)


@cloud.command(name="filter")
@options.model_arg
@click.argument("inputs", nargs=-1, required=True, type=options.InputPath())
@click.option("-o", "--output", required=True, type=click.Path(), help="CSV: one row per chip, cloudy or not.")
@click.option("--mask", type=click.Path(), default=None,
              help="For one raster input: a raster aligned with it, 1 on clear chips, 0 on cloudy ones.")
@click.option("--threshold", type=options.FiniteFloatRange(0, 1), default=None,
              help="P(cloudy) from which a chip is cloudy [0.5].")
@options.bands_opt
@options.scale_options
@options.device_opt
@options.overwrite_opt
def filter_(model: str, inputs: tuple[str, ...], output: str, mask: str | None, threshold: float | None,
            bands: str | None, scale: str | None, offset: str | None, device: str, overwrite: bool) -> None:
    """Sort INPUTS (a raster cut into chip-size windows, chip files or folders) into clear and cloudy with MODEL."""
    from landsight.classify.gate import CloudGate, filter_chips, filter_raster
    from landsight.classify.inputs import is_large_raster
    from landsight.errors import ConfigError

    gate = CloudGate.load(model, device)
    if threshold is not None:
        gate.threshold = threshold
    indexes = parse_band_indexes(bands)
    given = options.band_units(scale, offset)
    single_raster = len(inputs) == 1 and Path(inputs[0]).is_file() and is_large_raster(Path(inputs[0]),
                                                                                         gate.chip_size)
    if mask and not single_raster:
        raise ConfigError("--mask needs exactly one raster input (larger than twice the gate's chip size)")
    if single_raster:
        counts = filter_raster(gate, inputs[0], output, mask, indexes, overwrite, given)
    else:
        counts = filter_chips(gate, inputs, output, indexes, overwrite, given)
    click.echo(f"{counts['chips']} chip(s): {counts['clear']} clear, {counts['cloudy']} cloudy; wrote {output}"
               + (f" and {mask}" if mask else ""))
