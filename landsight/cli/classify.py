"""`landsight classify train | report | predict`: image classifiers from labelled chips, without ML expertise."""

from __future__ import annotations

import collections
import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from landsight.cli import options
from landsight.cli.advice import CommandGroup
from landsight.errors import ConfigError
from landsight.imagery.bands import parse_band_indexes

NORM_CHOICES = ["dataset", "per-image"]


def _names(text: str | None) -> tuple[str, ...] | None:
    return tuple(part.strip() for part in text.split(",")) if text else None


def _qa_bits(text: str) -> tuple[int, int] | None:
    if text.lower() == "none":
        return None
    try:
        low, high = (int(v) for v in text.replace("-", ",").split(","))
    except ValueError as exc:
        raise ConfigError(f"--qa-bits {text!r}: give LOW,HIGH bit numbers such as 14,15, or none") from exc
    if not 0 <= low <= high <= 63:
        raise ConfigError(f"--qa-bits {text!r}: bit numbers go from 0 to 63, LOW first, e.g. 14,15")
    return (low, high)


def data_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options describing where chips come from (shared by `classify train` and `cloud train`)."""
    decorators = [
        click.option("--chip-size", type=click.IntRange(min=1), default=None,
                     help="Chip side in px: cut size for rasters [64], resize target for chip files [their most "
                          "common size]."),
        click.option("--stride", type=click.IntRange(min=1), default=None,
                     help="Step between chips cut from a raster, px [chip size]."),
        click.option("--cloud-mask", type=options.InputPath(dir_okay=False), default=None,
                     help="Cloud mask or QA band aligned with the DATA raster; chips labelled clear/cloudy."),
        click.option("--cloudy-if", type=options.FiniteFloatRange(0, 1, min_open=True), default=0.05, show_default=True,
                     help="A chip is cloudy when cloud covers at least this share of its pixels."),
        click.option("--qa-bits", default="14,15", show_default=True,
                     help="Bits LOW,HIGH of the QA band holding cloud confidence (Landsat-8 BQA), or none for a "
                          "0/1 mask."),
        click.option("--qa-value", type=click.IntRange(min=0), default=3, show_default=True,
                     help="QA bit value meaning cloud."),
        click.option("--labels", type=options.InputPath(dir_okay=False), default=None,
                     help="Label raster or polygons; each chip gets the majority class of its labelled pixels."),
        click.option("--class-field", default=None, help="Polygon property naming the class (with --labels)."),
        click.option("--min-labelled", type=options.FiniteFloatRange(0, 1), default=0.5, show_default=True,
                     help="Chips with less of their pixels labelled are left out (with --labels)."),
        click.option("--multi-label-min", type=options.FiniteFloatRange(0, 1, min_open=True), default=None,
                     help="Multi-label chips: every class covering this share of the labelled pixels."),
        options.bands_opt,
        click.option("--band-names", default=None, help="Comma-separated band names, e.g. blue,green,red,nir."),
        options.scale_opt,
        options.offset_opt,
        options.units_opt,
        click.option("--skip-unreadable", is_flag=True, help="Leave out chip files that cannot be read."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def search_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options of the automatic search (shared by `classify train` and `cloud train`)."""
    decorators = [
        options.output_opt,
        click.option("--budget", default="10m", show_default=True,
                     help="Time for the whole run, e.g. 90s, 5m, 1h. A run resumed after an interruption has it "
                          "again for the work left (finished candidates are not retrained)."),
        click.option("--backbones", default=None,
                     help="Comma-separated timm backbones to try [tf_efficientnet_lite0,resnet18,"
                          "mobilenetv3_large_100,efficientnet_b0,resnet34; cloud train: tf_efficientnet_lite0]."),
        click.option("--weights", default=None, type=options.InputPath(dir_okay=False),
                     help="Local weights file (timm state dict) to start from; its backbone is detected."),
        click.option("--normalization", type=click.Choice(NORM_CHOICES), default="dataset", show_default=True,
                     help="Training-data band statistics, or per image (for other sensors / DN vs reflectance)."),
        click.option("--block-chips", type=options.FiniteFloatRange(0, min_open=True), default=2.0, show_default=True,
                     help="Spatial blocks of the split, in chip widths (georeferenced chips)."),
        click.option("--max-epochs", type=click.IntRange(min=1), default=None,
                     help="Most epochs per candidate [40; cloud train: 30]."),
        click.option("--patience", type=click.IntRange(min=1), default=None,
                     help="Epochs without validation gain before a candidate stops [6; cloud train: 30]."),
        click.option("--lr-search/--no-lr-search", default=None,
                     help="After one run per backbone, try learning rates around the best while time is left "
                          "[on; cloud train: off]."),
        click.option("--seed", type=options.SEED, default=0, show_default=True,
                     help="Random seed (split and training)."),
        click.option("--ensemble", type=click.IntRange(min=1), default=1, show_default=True,
                     help="Train the chosen candidate this many times from seeds SEED, SEED+1, ... and average their "
                          "probabilities (the search gets 1/N of the time)."),
        click.option("--model", type=click.Choice(["auto", "network"]), default="auto", show_default=True,
                     help="What the MODEL file holds: auto = the better on validation macro F1 of the network and "
                          "the baseline (logistic regression on each band's chip statistics), or the network."),
        click.option("--restart", is_flag=True,
                     help="Ignore the resume state (OUTPUT.resume/) left by an interrupted run; without it, the same "
                          "command run again continues where it stopped."),
        options.threads_opt,
        options.device_opt,
        options.overwrite_opt,
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def run_training(data: str, preset: str | None, **kw: Any) -> None:
    """Load chips, train within the budget and print the outcome (shared by `classify train` and `cloud train`)."""
    started = time.monotonic()
    from landsight.classify.automl import parse_budget, resolve_weights, search_settings
    from landsight.classify.dataset import DataSpec, check_cloud_classes, load_chips
    from landsight.classify.fit import set_cpu_threads
    from landsight.classify.rules import CloudRule, describe
    from landsight.classify.train import TrainSettings, train_classifier

    search = search_settings(parse_budget(kw["budget"]), preset, backbones=_names(kw["backbones"]),
                             weights=kw["weights"], max_epochs=kw["max_epochs"], patience=kw["patience"],
                             seed=kw["seed"], lr_search=kw["lr_search"])
    settings = TrainSettings(search, kw["normalization"], block_chips=kw["block_chips"], device=kw["device"],
                             preset=preset, ensemble=kw["ensemble"], model=kw["model"])
    settings = dataclasses.replace(settings, search=resolve_weights(settings.search))  # check --weights first
    spec = DataSpec(data, kw["chip_size"], kw["stride"], kw["cloud_mask"],
                    CloudRule(kw["cloudy_if"], _qa_bits(kw["qa_bits"]), kw["qa_value"]), kw["labels"],
                    kw["class_field"], kw["min_labelled"], kw["multi_label_min"],
                    tuple(parse_band_indexes(kw["bands"]) or ()) or None, _names(kw["band_names"]),
                    kw["skip_unreadable"], options.band_units(kw["scale"], kw["offset"], kw["units"]))
    set_cpu_threads(kw["threads"])
    chips = load_chips(spec)
    if preset == "cloud":
        check_cloud_classes(chips)
    click.echo(describe(chips))
    _model, report = train_classifier(chips, kw["output"], settings, kw["overwrite"], started, kw["restart"])
    _echo_report(report)


def _echo_report(report: dict[str, Any]) -> None:
    sizes = report["split"]["sizes"]
    click.echo(f"split {sizes['train']}/{sizes['val']}/{sizes['test']} chips (train/val/test)"
               + (", spatially blocked" if report["split"]["blocked"] else ""))
    for row in report["candidates"]:
        click.echo(f"  candidate {row['candidate']:<45} val macro F1 {row['val_macro_f1']:.3f}  "
                   f"{row['epochs']} epochs, {row['seconds']:.0f} s ({row['stopped']})")
    for row in report.get("skipped", []):
        click.echo(f"  skipped   {row['candidate']} (needs ~{row['needs_s']} s, {row['left_s']} s left)")
    test = report["test"]
    chosen = report["chosen"]["candidate"] if report.get("kept") != "baseline" else "the baseline"
    click.echo(f"chosen {chosen}; test ({test['chips']} chips): macro F1 "
               f"{_num(test.get('mean_f1'))}" + (f", accuracy {_num(test['accuracy'])}" if test.get("accuracy")
                                                 is not None else ""))
    for name, s in test["per_class"].items():
        click.echo(f"  {name:>24}: precision {_num(s['precision'])}  recall {_num(s['recall'])}  "
                   f"F1 {_num(s['f1'])}  (support {s['support']})")
    baseline = report.get("baseline")
    if baseline:
        click.echo(f"baseline (logistic regression on band statistics): test macro F1 "
                   f"{_num(baseline['test'].get('mean_f1'))}")
        if report.get("kept") == "baseline":
            click.echo(f"kept the baseline: validation macro F1 {_num(baseline['val_macro_f1'])} against the "
                       f"network's {_num(report['chosen']['val_macro_f1'])} (the network's test macro F1: "
                       f"{_num(report['network_test'].get('mean_f1'))})")
    similarity = report.get("similarity") or {}
    if similarity:
        click.echo(f"similarity precision@{similarity['k']} on the test split: {_num(similarity['precision_at_k'])}")
    click.echo(f"wrote {report['model']} and its report {Path(report['model']).with_suffix('')}-report.html "
               f"in {report['elapsed_s']:.0f} s (budget {report['budget_s']:.0f} s)")


def _num(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@click.group(cls=CommandGroup)
def classify() -> None:
    """Image classification: train from labelled chips, report, predict."""


@classify.command()
@click.argument("data", type=options.InputPath())
@data_options
@search_options
def train(data: str, **kw: Any) -> None:
    """Train a classifier on DATA: a folder of class folders, a CSV of chips (path,label[s]), a BigEarthNet folder,
    or a raster with --cloud-mask / --labels. Chooses a backbone and learning rate within --budget."""
    run_training(data, None, **kw)


@classify.command()
@options.model_arg
@click.option("--json", "as_json", is_flag=True, help="Print the report JSON.")
@click.option("--open", "open_page", is_flag=True, help="Open the HTML report in a browser.")
def report(model: str, as_json: bool, open_page: bool) -> None:
    """Show MODEL's evaluation report (re-writing the HTML page from the model file if it is missing)."""
    from landsight.classify.reopen import reopen_report

    data, html = reopen_report(model)
    if as_json:
        click.echo(json.dumps(data, indent=1, default=str))
    else:
        _echo_report(data)
        click.echo(f"report: {html}")
    if open_page:
        click.launch(str(html))


@classify.command()
@options.model_arg
@click.argument("inputs", nargs=-1, required=True, type=options.InputPath())
@click.option("-o", "--output", default=None, type=click.Path(),
              help="OUT.csv, a vector file of chip footprints (OUT.geojson in WGS 84, OUT.gpkg, ...) or OUT.tif "
                   "(class per window of one raster).")
@options.bands_opt
@options.scale_options
@options.device_opt
@options.crs_opt
@options.overwrite_opt
def predict(model: str, inputs: tuple[str, ...], output: str | None, bands: str | None, scale: str | None,
            offset: str | None, device: str, crs: str | None, overwrite: bool) -> None:
    """Classify INPUTS (chip files, folders of chips, rasters cut into chip-size windows) with MODEL."""
    from landsight.classify.classifier import Classifier
    from landsight.classify.predict import predict_to_file

    classifier = Classifier.load(model, device)
    rows = predict_to_file(classifier, inputs, output, parse_band_indexes(bands), overwrite, crs,
                           options.band_units(scale, offset))
    if output is None:
        for row in rows:
            click.echo(f"{row['id']}\t{row['class']}\t" + " ".join(f"{k}={v:.3f}" for k, v in row.items()
                                                                   if k.startswith("p_")))
    counts = collections.Counter(row["class"] for row in rows)
    click.echo(f"{len(rows)} chip(s): " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
               + (f"; wrote {output}" if output else ""), err=output is None)
