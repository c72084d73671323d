"""`landsight change`: two dates of one area -> change mask, appeared/disappeared polygons and a review map."""

from __future__ import annotations

from typing import cast

import click

from landsight.change import ChangeParams, Mode, detect_change
from landsight.cli import options
from landsight.imagery.bands import parse_band_indexes


@click.command()
@click.argument("before", type=options.InputPath(exists=True, dir_okay=False))
@click.argument("after", type=options.InputPath(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Report directory to create.")
@click.option("--model", type=options.InputPath(exists=True, dir_okay=False), default=None,
              help="Classify both images with this model first and compare the class maps.")
@click.option("--mode", type=click.Choice(["auto", "image", "classes"]), default="auto", show_default=True,
              help="Compare images spectrally or class rasters (predictions); auto decides from the inputs.")
@click.option("--radius", type=click.IntRange(0, 16), default=1, show_default=True,
              help="Misregistration tolerated, in pixels.")
@click.option("--threshold", type=options.FiniteFloatRange(0, min_open=True), default=1.5, show_default=True,
              help="Image mode: change when the normalized RMS band difference exceeds this (standard deviations).")
@click.option("--min-pixels", type=click.IntRange(1), default=4, show_default=True,
              help="Drop change patches smaller than this many pixels.")
@options.bands_opt
@options.device_opt
@click.option("--batch-size", type=click.IntRange(1), default=None, help="With --model: windows per batch.")
@click.option("--overlap", type=click.IntRange(0), default=None, help="With --model: window overlap in pixels.")
@options.crs_opt
@options.overwrite_opt
def change(before: str, after: str, output: str, model: str | None, mode: str, radius: int, threshold: float,
           min_pixels: int, bands: str | None, device: str, batch_size: int | None, overlap: int | None,
           crs: str | None, overwrite: bool) -> None:
    """Detect change between BEFORE and AFTER (two images of one area, or two class rasters from `predict`)."""
    indexes = parse_band_indexes(bands)
    params = ChangeParams(radius, threshold, min_pixels, tuple(indexes) if indexes else None)
    extra = {k: v for k, v in {"batch_size": batch_size, "overlap": overlap}.items() if v is not None}
    summary = detect_change(before, after, output, model, cast(Mode, mode), params, device, extra, overwrite, crs)
    px = summary["pixels"]
    click.echo(f"changed: {px['changed']} of {px['valid']} px ({summary['changed_area_m2']:.1f} m²), "
               f"{summary['polygons']} polygon(s)")
    for kind, per_class in summary["changes"].items():
        for name, entry in per_class.items():
            click.echo(f"{kind:>12} {name}: {entry['count']} polygon(s), {entry['area_m2']:.1f} m²")
    click.echo(f"wrote {output}/ (open {output}/review.html)")
