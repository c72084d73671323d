"""`landsight evaluate`: score a predicted mask against labels; write metrics.json and a confusion-matrix plot."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from landsight.cli import options
from landsight.config import DatasetConfig, load_dataset_config
from landsight.evaluate import EvaluationReport, evaluate_prediction


@click.command()
@click.argument("prediction", type=options.InputPath(dir_okay=False))
@click.argument("labels", type=options.InputPath(dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False),
              help="Report directory to create (metrics.json, confusion_matrix.png).")
@options.class_field_opt
@options.config_opt
@options.unlabelled_opt
@click.option("--bounds", nargs=4, type=options.FiniteFloatRange(), default=None, metavar="LEFT BOTTOM RIGHT TOP",
              help="Evaluate only inside these bounds, in PREDICTION's CRS (e.g. a held-out area).")
@options.overwrite_opt
def evaluate(prediction: str, labels: str, output: str, class_field: str | None, config_path: str | None,
             background: bool, bounds: tuple[float, float, float, float] | None, overwrite: bool) -> None:
    """Score PREDICTION (a class mask) against LABELS (polygons, or a mask aligned with PREDICTION)."""
    config = load_dataset_config(config_path) if config_path else DatasetConfig()
    report = evaluate_prediction(prediction, labels, output, class_field or config.class_field, background,
                                 bounds or None, overwrite, config.classes)
    Console().print(scores_table(report))
    click.echo(f"wrote {output}")


def scores_table(report: EvaluationReport) -> Table:
    """Per-class IoU, F1, precision, recall and support as a rich table, with the means as the last row."""
    table = Table(title=f"{report.pixels:,} pixels scored, accuracy {_fmt(report.accuracy)}")
    for column in ("class", "IoU", "F1", "precision", "recall", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, scores in report.per_class.items():
        table.add_row(name, *(_fmt(scores[k]) for k in ("iou", "f1", "precision", "recall")),
                      f"{scores['support']:,}")
    table.add_row("mean", *(_fmt(getattr(report, f"mean_{k}")) for k in ("iou", "f1", "precision", "recall")), "",
                  style="bold")
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
