"""`landsight info`: print what a MODEL file carries."""

from __future__ import annotations

import json

import click

from landsight.cli import options


@click.command()
@options.model_arg
@click.option("--json", "as_json", is_flag=True, help="Print the metadata as JSON.")
def info(model: str, as_json: bool) -> None:
    """Print MODEL's architecture, bands, normalization, classes, training data and metrics."""
    from landsight.models.model_file import load_model_file

    model_file = load_model_file(model, task=None)
    meta = {**model_file.metadata(), "sha256": model_file.sha256}
    if as_json:
        click.echo(json.dumps(meta, indent=2))
        return
    click.echo(f"model        {model} (sha256 {model_file.sha256[:12]})")
    members = f", ensemble of {meta['members']}" if meta.get('members', 1) > 1 else ""
    click.echo(f"task         {meta['task']}: {meta['arch']} / {meta['encoder']}{members}, chip {meta['chip_size']} px")
    click.echo(f"bands        {', '.join(model_file.bands.names)} (image bands {list(model_file.bands.indexes)})")
    norm = model_file.normalization
    click.echo("normalize    " + ", ".join(f"({m:.4g} ± {s:.4g})" for m, s in zip(norm.mean, norm.std, strict=True)))
    click.echo("classes      " + ", ".join(f"{c.value}={c.name}" for c in model_file.classes.classes))
    training = meta["training"]
    if training:
        click.echo(f"trained on   {len(training.get('sources', []))} pair(s), data sha256 "
                   f"{training.get('data_sha256', '')[:12]}, best epoch {training.get('best_epoch')} of "
                   f"{training.get('epochs_run')}")
    metrics = meta["metrics"]
    if metrics.get("mean_iou") is not None:
        click.echo(f"validation   mIoU {metrics['mean_iou']}, " + ", ".join(
            f"{name} IoU {s['iou']}" for name, s in metrics.get("per_class", {}).items()))
    if "baseline" in training:
        click.echo(f"baseline     {training['baseline']['verdict']}")
    elif metrics and metrics.get("mean_iou") is None:
        scalars = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
        click.echo("metrics      " + ", ".join(f"{k} {v:.4g}" for k, v in scalars.items()))
    click.echo(f"created      {meta['created']} with landsight {meta['landsight_version']}")
