"""`landsight dataset ...`: inspect training data before spending time on training."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from landsight.cli import options
from landsight.cli.advice import CommandGroup, as_flags
from landsight.cli.remote import image_path, stac_options
from landsight.config import class_table_for
from landsight.dataset_check import DatasetReport, check_dataset, write_report_json
from landsight.outputs import check_output


@click.group(cls=CommandGroup)
def dataset() -> None:
    """Inspect image + label pairs."""


@dataset.command()
@options.image_arg
@options.labels_arg
@options.class_field_opt
@options.class_name_opt
@options.config_opt
@options.unlabelled_opt
@click.option("--chip-size", default=256, show_default=True, type=click.IntRange(min=1),
              help="Training chip size in pixels.")
@click.option("--val-fraction", default=0.2, show_default=True, type=options.FiniteFloatRange(0, 1, max_open=True),
              help="Fraction of the image held out in validation blocks.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the report as JSON to this file.")
@stac_options
@options.overwrite_opt
def check(image: str, labels: str, class_field: str | None, class_name: str, config_path: str | None,
          background: bool, chip_size: int, val_fraction: float, json_path: str | None, aoi: str | None,
          stac_bands: str | None, overwrite: bool) -> None:
    """Report CRS, overlap, class balance, nodata and the train/validation split of IMAGE and LABELS.

    IMAGE is a raster, or a STAC Item or ItemCollection (file or URL) read over HTTP (with --stac-bands, --aoi).
    """
    if json_path:
        check_output(json_path, overwrite)
    with image_path(image, aoi, stac_bands) as path:
        table, field = class_table_for(path, labels, config_path, class_field, class_name, background)
        report = check_dataset(path, labels, table, field, background, chip_size, val_fraction)
    console = Console()
    console.print(report_table(report))
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/yellow] {as_flags(warning, click.get_current_context().command)}")
    if json_path:
        write_report_json(report, json_path, overwrite)
        click.echo(f"wrote {json_path}")


def report_table(report: DatasetReport) -> Table:
    """The report as a two-column rich table, with one row per class."""
    table = Table(title=f"dataset check: {report.image} + {report.labels}", show_header=False)
    table.add_column("item", style="bold")
    table.add_column("value")
    res_x, res_y = report.image_resolution
    table.add_row("image", f"{report.image_size[0]}x{report.image_size[1]} px, {res_x:g} x {res_y:g} per px, "
                           f"{report.image_crs}")
    table.add_row("labels", f"{report.features} feature(s), {report.labels_crs}")
    table.add_row("nodata", f"{100 * report.nodata_fraction:.2f} % of the image")
    table.add_row("overlap", f"{100 * report.label_area_inside:.1f} % of the label area inside the image; labels "
                             f"cover {100 * report.label_coverage:.2f} % of the image, their bounding boxes "
                             f"{100 * report.bbox_coverage:.1f} %")
    total = sum(report.class_pixels.values()) or 1
    for name, n in report.class_pixels.items():
        table.add_row(f"class {name}", f"{n:,} px ({100 * n / total:.2f} %), weight {report.class_weights[name]:.3f}")
    table.add_row("ignored", f"{report.ignored_pixels:,} px")
    table.add_row("split", f"{report.val_chips} validation chip(s), {report.train_chips} disjoint training chip(s), "
                           f"{report.train_positions} training position(s) of {report.chip_size} px")
    return table
