"""`landsight rasterize`: vector labels -> a mask aligned with an image."""

from __future__ import annotations

import click

from landsight.cli import options
from landsight.config import class_table_for
from landsight.labels.rasterize import rasterize_labels


@click.command()
@options.image_arg
@options.labels_arg
@options.output_opt
@options.class_field_opt
@options.class_name_opt
@options.unlabelled_opt
@options.all_touched_opt
@options.config_opt
@options.overwrite_opt
def rasterize(image: str, labels: str, output: str, class_field: str | None, class_name: str, background: bool,
              all_touched: bool, config_path: str | None, overwrite: bool) -> None:
    """Rasterize LABELS (polygons) into a uint8 mask aligned pixel for pixel with IMAGE (255 = ignore)."""
    table, field = class_table_for(image, labels, config_path, class_field, class_name, background)
    counts = rasterize_labels(image, labels, output, table, field, background, all_touched, overwrite)
    total = sum(counts.values())
    for name, n in counts.items():
        click.echo(f"{name:>16}: {n:>10} px ({100 * n / total:.2f} %)")
    click.echo(f"wrote {output}")
