"""Sparse land-cover polygons: the network, the pixel baseline and `train`'s default choice, cross-validated by polygon.

The NC sample's polygons are dealt into folds (per class, in a seeded order, so every fold holds some of each class
that has enough polygons). Each fold trains on the other folds' polygons with the README's land-cover settings
(`--chip-size 64`, everything else default) and is scored on its own polygons' pixels, which no training step saw:
overall accuracy (OA) of the network (`--model network`), of the pixel baseline (`--model baseline`) and of what the
default `--model auto` keeps (the better of the two on the training run's own validation blocks).

    .venv/bin/python -m bench.nc_grouped_cv [--folds 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import rasterio
from click.testing import CliRunner

from bench.common import OUT, git_revision, machine, replace_section
from landsight.cli.main import cli
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.labels.rasterize import rasterize_labels
from landsight.models.model_file import load_model_file

ROOT = Path(__file__).resolve().parent.parent
IMAGE = ROOT / "tests" / "data" / "nc-landcover" / "landsat7-2000.tif"
LABELS = ROOT / "tests" / "data" / "nc-landcover" / "landcover-polygons.geojson"
BENCHMARKS = ROOT / "BENCHMARKS.md"
SETTINGS = ["--class-field", "label", "--ignore-unlabelled", "--chip-size", "64"]


def deal_folds(features: list[dict], folds: int, seed: int) -> list[list[dict]]:
    """Polygons dealt round-robin into `folds` groups, class by class in a seeded order."""
    by_class = defaultdict(list)
    for feature in features:
        by_class[feature["properties"]["label"]].append(feature)
    groups: list[list[dict]] = [[] for _ in range(folds)]
    turn = 0
    for name in sorted(by_class):
        members = by_class[name]
        random.Random(f"{seed}-{name}").shuffle(members)
        for feature in members:
            groups[turn % folds].append(feature)
            turn += 1
    return groups


def run(*args: object) -> None:
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    if result.exit_code != 0:
        raise SystemExit(f"landsight {' '.join(map(str, args))} failed:\n{result.output}")


def accuracy(model: Path, test_labels: Path, folder: Path, classes: ClassTable) -> float:
    """Overall accuracy of `model`'s prediction over the pixels of `test_labels`, classes matched by name (a fold's
    training polygons may lack a class, which its model then never predicts)."""
    prediction, truth = folder / f"{model.stem}-pred.tif", folder / f"{model.stem}-truth.tif"
    run("predict", model, IMAGE, "-o", prediction, "--overwrite")
    rasterize_labels(IMAGE, test_labels, truth, classes, "label", background=False, overwrite=True)
    to_all = np.full(256, IGNORE_VALUE, dtype=np.uint8)
    for c in load_model_file(model).classes.classes:
        to_all[c.value] = classes.classes[classes.names.index(c.name)].value
    with rasterio.open(prediction) as p, rasterio.open(truth) as t:
        predicted, expected = to_all[p.read(1)], t.read(1)
    labelled = expected != IGNORE_VALUE
    return float((predicted[labelled] == expected[labelled]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    args = parser.parse_args()
    collection = json.loads(LABELS.read_text())
    classes = ClassTable.from_names(sorted({f["properties"]["label"] for f in collection["features"]}),
                                    background=False)
    rows = []
    for k, test in enumerate(deal_folds(collection["features"], args.folds, args.seed)):
        folder = OUT / "nc-cv" / f"fold{k}"
        folder.mkdir(parents=True, exist_ok=True)
        held_out = {id(f) for f in test}
        train_labels, test_labels = folder / "train.geojson", folder / "test.geojson"
        train_labels.write_text(json.dumps({**collection, "features": [f for f in collection["features"]
                                                                        if id(f) not in held_out]}))
        test_labels.write_text(json.dumps({**collection, "features": test}))
        network, baseline = folder / "network.pt", folder / "baseline.pt"
        run("train", IMAGE, train_labels, "-o", network, *SETTINGS, "--model", "network", "--seed", args.seed,
            "--overwrite")
        run("train", IMAGE, train_labels, "-o", baseline, *SETTINGS, "--model", "baseline", "--seed", args.seed,
            "--overwrite")
        trained = load_model_file(network)
        val_network = trained.metrics.get("mean_iou") or 0.0
        val_baseline = trained.training["baseline"]["metrics"]["mean_iou"] or 0.0
        row = {"fold": k, "test_polygons": len(test), "network": accuracy(network, test_labels, folder, classes),
               "baseline": accuracy(baseline, test_labels, folder, classes), "val_miou_network": val_network,
               "val_miou_baseline": val_baseline, "auto_keeps": "baseline" if val_baseline > val_network else "network"}
        row["default"] = row[row["auto_keeps"]]  # what `--model auto` would have saved: the same two models
        rows.append(row)
        print(json.dumps(row), flush=True)
    mean = {key: statistics.mean(r[key] for r in rows) for key in ("network", "baseline", "default")}
    lines = [f"Command: `python -m bench.nc_grouped_cv {' '.join(sys.argv[1:])}` (commit {git_revision()}); "
             f"`landsight train {' '.join(SETTINGS)}` otherwise default.", f"Machine: {machine()}.", "",
             "| fold | test polygons | OA network | OA pixel baseline | validation mIoU network / baseline | "
             "default keeps | OA default |", "|---:|---:|---:|---:|---|---|---:|"]
    lines += [f"| {r['fold']} | {r['test_polygons']} | {r['network']:.3f} | {r['baseline']:.3f} | "
              f"{r['val_miou_network']:.3f} / {r['val_miou_baseline']:.3f} | {r['auto_keeps']} | "
              f"{r['default']:.3f} |" for r in rows]
    lines += ["", f"Mean overall accuracy over {len(rows)} folds: network **{mean['network']:.3f}**, pixel baseline "
              f"**{mean['baseline']:.3f}**, default (`--model auto`) **{mean['default']:.3f}**; the network minus the "
              f"baseline: {mean['network'] - mean['baseline']:+.3f} (the issue asks for >= +0.03)."]
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        replace_section(BENCHMARKS, "Sparse land-cover polygons, cross-validated by polygon (issue 15)", body)


if __name__ == "__main__":
    main()
