"""`landsight train`: image(s) + labels -> a segmentation MODEL file."""

from __future__ import annotations

import contextlib
import math

import click

from landsight.cli import options
from landsight.cli.remote import image_path, stac_options
from landsight.config import (
    MODEL_CHOICES,
    SAMPLING_CHOICES,
    VALIDATION_CHOICES,
    class_table_for,
    load_dataset_config,
    load_train_config,
)
from landsight.errors import ConfigError
from landsight.imagery.bands import BandUnits, parse_band_indexes


def _class_weights(ctx: click.Context, param: click.Parameter,
                   value: str | None) -> tuple[float, ...] | str | None:
    """--class-weights: auto, or numbers that are finite, >= 0 and not all 0."""
    if value is None or value == "auto":
        return value
    try:
        weights = tuple(float(w) for w in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r}: give one number per class, comma-separated, e.g. 1,4") from None
    if not all(math.isfinite(w) and w >= 0 for w in weights) or not any(weights):
        raise click.BadParameter(f"{value!r}: weights must be finite and >= 0, and not all 0")
    return weights


@click.command()
@click.argument("image", required=False, type=options.InputPath(dir_okay=False))
@click.argument("labels", required=False, type=options.InputPath(dir_okay=False))
@options.output_opt
@options.class_field_opt
@options.class_name_opt
@options.unlabelled_opt
@options.config_opt
@click.option("--model-config", type=options.InputPath(exists=True, dir_okay=False), default=None,
              help="YAML of training settings (see configs/model-*.yaml); flags override it.")
@click.option("--epochs", type=click.IntRange(min=1), default=None,
              help="Maximum epochs (early stopping may end sooner).")
@click.option("--chip-size", type=click.IntRange(min=32), default=None,
              help="Chip size in pixels, a multiple of 32 [256].")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="Chips per batch [8].")
@click.option("--chips-per-epoch", type=click.IntRange(min=1), default=None, help="Random chips drawn per epoch [64].")
@click.option("--lr", type=options.FiniteFloatRange(0, min_open=True), default=None,
              help="Peak learning rate of the one-cycle schedule [1e-3].")
@click.option("--arch", default=None, help="unet, unetplusplus, fpn or deeplabv3plus [unet].")
@click.option("--encoder", default=None, help="timm encoder name [tf_efficientnet_lite0].")
@click.option("--weights", default=None,
              help="Encoder init: imagenet (shipped EfficientNet-Lite weights), none, or a local file [imagenet].")
@click.option("--loss", default=None, help="ce, dice, lovasz, ce+dice or ce+lovasz [ce+dice].")
@click.option("--class-weights", default=None, callback=_class_weights,
              help="Cross-entropy weight per class, comma-separated, or auto: the square root of inverse class "
                   "frequency in the training pixels (the policy `dataset check` reports).")
@click.option("--model", type=click.Choice(MODEL_CHOICES), default=None,
              help="What the MODEL file holds: auto = the better on validation of the network and a pixel baseline "
                   "(a random forest on each pixel's bands and local means, fitted on the same pixels), network, "
                   "or baseline (fast; no network trained) [auto].")
@click.option("--sampling", type=click.Choice(SAMPLING_CHOICES), default=None,
              help="Where training chips come from: uniform (anywhere), labels (around labelled pixels, each class "
                   "alike), or auto: labels when they cover under half of the area [auto].")
@click.option("--validation", type=click.Choice(VALIDATION_CHOICES), default=None,
              help="What is held out for validation: blocks (random chip-sized blocks), polygons (a share of each "
                   "class's label polygons), or auto: polygons for sparse vector labels [auto].")
@click.option("--val-fraction", type=options.FiniteFloatRange(0, 1, max_open=True), default=None,
              help="Share held out for validation: of the blocks, or of each class's polygons [0.2].")
@click.option("--patience", type=click.IntRange(min=1), default=None,
              help="Epochs without validation mIoU gain before stopping [8].")
@click.option("--seed", type=options.SEED, default=None, help="Random seed [0].")
@click.option("--ensemble", type=click.IntRange(min=1), default=None,
              help="Train this many models from seeds SEED, SEED+1, ... and average their probabilities [1]: "
                   "N times the training time, steadier results on small datasets.")
@click.option("--devices", type=click.IntRange(min=1), default=None,
              help="Train data-parallel on this many devices (DDP: GPUs, or CPU processes) [1].")
@click.option("--precision", type=click.Choice(["auto", "32", "bf16"]), default=None,
              help="auto: bf16 autocast on CUDA, fp32 elsewhere; 32; or bf16 (also on CPUs that support it) [auto].")
@click.option("--bounds", nargs=4, type=options.FiniteFloatRange(), default=None,
              help="Train only inside LEFT BOTTOM RIGHT TOP (image CRS), e.g. to keep an area unseen.")
@click.option("--max-minutes", type=options.FiniteFloatRange(0, min_open=True), default=None,
              help="Stop after this much training time.")
@click.option("--restart", is_flag=True, help="Ignore a resume state left by an interrupted run.")
@options.bands_opt
@options.scale_options
@options.units_opt
@options.device_opt
@stac_options
@options.overwrite_opt
def train(image: str | None, labels: str | None, output: str, class_field: str | None, class_name: str,
          background: bool, config_path: str | None, model_config: str | None, bands: str | None, scale: str | None,
          offset: str | None, units: str | None, device: str, bounds: tuple[float, float, float, float] | None,
          max_minutes: float | None, restart: bool, aoi: str | None, stac_bands: str | None, overwrite: bool,
          class_weights: tuple[float, ...] | str | None, **settings: object) -> None:
    """Train a segmentation model on IMAGE and LABELS (or the pairs of a --config dataset file).

    IMAGE may be a STAC Item or ItemCollection (file or URL): --stac-bands names the item bands to train on (they
    become the model's band names), --aoi the area read over HTTP.
    """
    if image is None and (aoi or stac_bands):
        raise ConfigError("--aoi and --stac-bands go with a STAC Item or ItemCollection as IMAGE")
    with contextlib.ExitStack() as stack:
        if image is not None:
            image = stack.enter_context(image_path(image, aoi, stac_bands))
        _train(image, labels, output, class_field, class_name, background, config_path, model_config, bands, device,
               bounds, max_minutes, restart, overwrite, class_weights, options.band_units(scale, offset, units),
               **settings)


def _train(image: str | None, labels: str | None, output: str, class_field: str | None, class_name: str,
           background: bool, config_path: str | None, model_config: str | None, bands: str | None, device: str,
           bounds: tuple[float, float, float, float] | None, max_minutes: float | None, restart: bool,
           overwrite: bool, class_weights: tuple[float, ...] | str | None, given: BandUnits | None,
           **settings: object) -> None:
    from landsight.train.segmentation import train_segmentation

    dataset = load_dataset_config(config_path) if config_path else None
    pairs = [(image, labels)] if image and labels else list(dataset.pairs if dataset else [])
    if not pairs:
        raise ConfigError("give IMAGE and LABELS, or a --config dataset file with 'pairs'")
    config = load_train_config(model_config, class_weights=class_weights, **settings)
    if dataset is not None and dataset.background is False:
        background = False
    table, field = class_table_for(pairs[0][0], pairs[0][1], config_path, class_field, class_name, background)
    model = train_segmentation(pairs, output, table, field, background, config, device,
                               parse_band_indexes(bands), bounds or None, overwrite, restart, max_minutes, given)
    scores = model.metrics.get("per_class", {})
    for name, s in scores.items():
        click.echo(f"{name:>16}: IoU {s['iou'] if s['iou'] is not None else float('nan'):.3f}  "
                   f"F1 {s['f1'] if s['f1'] is not None else float('nan'):.3f}")
    members = f"{model.members} members, " if model.members > 1 else ""
    chosen = "pixel baseline" if model.training["best_epoch"] is None else f"best epoch {model.training['best_epoch']}"
    click.echo(f"validation mIoU {model.metrics.get('mean_iou')} ({members}{chosen}); wrote {output} "
               f"(sha256 {model.sha256[:12]})")
    if "baseline" in model.training:
        click.echo(model.training["baseline"]["verdict"])
