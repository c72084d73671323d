"""Shared CLI arguments and options: one flag, one meaning."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any, TypeVar

import click

from landsight.errors import ConfigError
from landsight.imagery.bands import BandUnits, parse_band_values
from landsight.labels.vector_out import KEEP_CRS, check_request
from landsight.outputs import register_input

F = TypeVar("F", bound=Callable[..., Any])


class InputPath(click.Path):
    """A path the command reads: registered so that no output of the command can replace it."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        path = super().convert(value, param, ctx)
        register_input(os.fsdecode(path))
        return path


class FiniteFloatRange(click.FloatRange):
    """`click.FloatRange` that also refuses nan and inf: nan passes every range comparison, then spoils results."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class ThreadCount(click.ParamType):
    """A number of CPU threads (at least 1), or "auto"."""

    name = "threads"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value == "auto":
            return value
        try:
            count = int(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is neither a number of threads nor auto.", param, ctx)
        if count < 1:
            self.fail(f"{count} thread(s): give at least 1, or auto.", param, ctx)
        return count


class VectorCrs(click.ParamType):
    """The CRS of written vectors: "raster" (keep the raster's) or a CRS such as EPSG:3857."""

    name = "crs"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            check_request(value)
        except ConfigError as exc:
            self.fail(str(exc), param, ctx)
        return KEEP_CRS if str(value).lower() == KEEP_CRS else value


def crs_option(*aliases: str) -> Callable[[F], F]:
    """`--crs` (plus `aliases`): the CRS of the vectors a command writes, one meaning for every command."""
    return click.option("--crs", *aliases, "crs", type=VectorCrs(), default=None,
                        help="CRS of written vectors: 'raster' keeps the raster's, or a CRS such as EPSG:3857 "
                             "[default: WGS 84 longitude/latitude for GeoJSON (RFC 7946) and GeoJSON sequences, the "
                             "raster's CRS for GeoPackage and other formats].")


crs_opt = crs_option()

SEED = click.IntRange(0, 2**31 - 1)
"""Random seeds: what every random generator landsight seeds (Python, NumPy, torch) accepts."""

overwrite_opt = click.option("--overwrite", is_flag=True, help="Replace existing outputs.")
image_arg = click.argument("image", type=InputPath(dir_okay=False))
labels_arg = click.argument("labels", type=InputPath(dir_okay=False))
output_opt = click.option("-o", "--output", required=True, type=click.Path(), help="Output path.")
class_field_opt = click.option("--class-field", default=None,
                               help="Feature property that names each feature's class (default: one class).")
class_name_opt = click.option("--class-name", default="foreground", show_default=True,
                              help="Name of the single class when no --class-field is given.")
config_opt = click.option("--config", "config_path", type=InputPath(exists=True, dir_okay=False), default=None,
                          help="YAML config file (see configs/); command-line flags override its values.")
unlabelled_opt = click.option("--background/--ignore-unlabelled", default=True, show_default=True,
                              help="Unlabelled pixels are background (complete labels such as buildings) or ignored "
                                   "(sparse labels such as hand-drawn polygons).")
all_touched_opt = click.option("--all-touched", is_flag=True,
                               help="Burn every pixel a polygon touches, not only those whose centre it covers.")
bands_opt = click.option("--bands", default=None, help="Comma-separated 1-based band numbers to use, e.g. 1,2,3,4.")
device_opt = click.option("--device", default="auto", show_default=True, type=click.Choice(["auto", "cpu", "cuda"]),
                          help="Where to run the model.")
model_arg = click.argument("model", type=InputPath(dir_okay=False))
window_opt = click.option("--window", type=click.IntRange(min=32), default=1024, show_default=True,
                          help="Inference window in px (multiple of 32); larger is faster, memory grows with it.")
overlap_opt = click.option("--overlap", type=click.IntRange(min=0), default=128, show_default=True,
                           help="Overlap of neighbouring windows in px (blended: no seams).")
threads_opt = click.option("--threads", type=ThreadCount(), default="auto", show_default=True,
                           help="CPU threads: a number, or auto (the cores other processes leave free).")
scale_opt = click.option("--scale", default=None,
                         help="Band scale, one per selected band (comma-separated) or one for all: physical value = "
                              "raw x SCALE + OFFSET, e.g. 1e-4 for Sentinel-2 L1C/L2A, 2e-5 for Landsat-8/9 Level-1 "
                              "DN [the file's scale metadata, else 1].")
offset_opt = click.option("--offset", default=None,
                          help="Band offset, one per selected band or one for all, e.g. -0.1 for Landsat-8/9 "
                               "Level-1 DN [the file's offset metadata, else 0].")
units_opt = click.option("--units", type=click.Choice(["dn", "reflectance"]), default=None,
                         help="Units of the bands after --scale/--offset. reflectance: the model gets a fixed "
                              "physical normalization and runs on any sensor's reflectance [the file's unit type, "
                              "else dn].")


def scale_options(func: F) -> F:
    """`--scale` and `--offset`: the physical units of images whose files lack scale/offset metadata."""
    return scale_opt(offset_opt(func))


def band_units(scale: str | None, offset: str | None, units: str | None = None) -> BandUnits | None:
    """The `BandUnits` of `--scale`, `--offset` and `--units` (None when none is given: the files decide)."""
    if scale is None and offset is None and units is None:
        return None
    return BandUnits(parse_band_values(scale, "scale"), parse_band_values(offset, "offset"), units)
