"""`landsight demo`: every stage on the shipped sample data, ending in an HTML page."""

from __future__ import annotations

import click

from landsight.cli import options


@click.command()
@click.option("-o", "--output", default="landsight-demo", show_default=True, type=click.Path(file_okay=False),
              help="Directory for the model, prediction, polygons, evaluation and index.html.")
@click.option("--max-minutes", type=options.FiniteFloatRange(0, min_open=True), default=15.0, show_default=True,
              help="Training time budget.")
@options.device_opt
@options.overwrite_opt
def demo(output: str, max_minutes: float, device: str, overwrite: bool) -> None:
    """Train on the Atlanta sample's western two thirds, predict, vectorize, evaluate on the eastern third."""
    from landsight.demo import run_demo

    summary = run_demo(output, overwrite, device, max_minutes=max_minutes)
    iou = "n/a" if summary.building_iou_east is None else f"{summary.building_iou_east:.3f}"
    click.echo(f"building IoU on the held-out eastern third: {iou}")
    click.echo(f"{summary.predicted_polygons} building polygons; timings {summary.timings}")
    click.echo(f"open {output}/index.html")
