"""Choose the demo's training settings on validation only, then score the choice once on the held-out east.

The demo trains on the western two thirds of the Atlanta sample and tests on the eastern third. Here each candidate
setting trains single models on the western two thirds with a quarter of it held out as validation blocks (a
different blocked split per seed) and is ranked by its mean validation building IoU; the eastern third is not read.
The winner then runs as the demo does (all of the west trains, no time limit) once per final seed, and only then is
the east scored: the mean and spread over those seeds go to BENCHMARKS.md. `--chosen NAME` skips the selection
(its table stays as recorded) and runs only the final scoring of that candidate.

    .venv/bin/python -m bench.demo_settings [--seeds 0 1] [--final-seeds 0 1 2] [--chosen NAME]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import statistics
import sys
from pathlib import Path

from bench.common import OUT, git_revision, machine, replace_section
from landsight.config import TrainConfig
from landsight.demo import DEMO_CONFIG, run_demo, sample_paths, split_bounds
from landsight.labels.classes import ClassTable

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"

CANDIDATES = {
    "weights 1,4; 6 epochs": dataclasses.replace(DEMO_CONFIG, class_weights=(1.0, 4.0), epochs=6),
    "weights 1,1; 6 epochs": dataclasses.replace(DEMO_CONFIG, class_weights=None, epochs=6),
    "weights auto; 6 epochs": dataclasses.replace(DEMO_CONFIG, class_weights="auto", epochs=6),
    "weights 1,4; 12 epochs": dataclasses.replace(DEMO_CONFIG, class_weights=(1.0, 4.0), epochs=12),
}
"""What is compared: the building weight against low recall, and the schedule length (~20 training buildings)."""


def validation_iou(config: TrainConfig, seed: int, out_dir: Path) -> float:
    """Building IoU on validation blocks inside the western two thirds, for one single model."""
    from landsight.train.segmentation import train_segmentation

    image, labels = sample_paths()
    west, _ = split_bounds(image)
    table = ClassTable.from_names(["building"], background=True)
    trial = dataclasses.replace(config, seed=seed, ensemble=1, val_fraction=0.25, model="network")
    model = train_segmentation([(str(image), str(labels))], out_dir / f"m-{seed}.pt", table, None, True, trial,
                               bounds=west, overwrite=True, restart=True)
    return float(model.metrics["per_class"]["building"]["iou"] or 0.0)


def final_scores(chosen: str, seeds: list[int], out: Path) -> list[float]:
    """The eastern third's building IoU of the demo run with candidate `chosen`, once per seed (no time limit)."""
    east = []
    for seed in seeds:
        summary = run_demo(out / f"final-{seed}", overwrite=True, max_minutes=None,
                           config=dataclasses.replace(CANDIDATES[chosen], seed=seed))
        east.append(summary.building_iou_east or 0.0)
        print(json.dumps({"final_seed": seed, "east_building_iou": east[-1]}), flush=True)
    return east


def _test_line(chosen: str, seeds: list[int], east: list[float]) -> str:
    spread = statistics.stdev(east) if len(east) > 1 else 0.0
    return (f"Test, scored once: `{chosen}` run as the demo (all of the west trains), seeds {seeds}: eastern-third "
            f"building IoU {', '.join(f'{v:.3f}' for v in east)}; mean **{statistics.mean(east):.3f}**, standard "
            f"deviation {spread:.3f}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="Validation splits per candidate.")
    parser.add_argument("--final-seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    parser.add_argument("--chosen", choices=list(CANDIDATES), help="Skip the selection; score this candidate.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    out = OUT / "demo-settings"
    if args.chosen:
        east = final_scores(args.chosen, args.final_seeds, out)
        body = f"Command: `python -m bench.demo_settings {' '.join(sys.argv[1:])}` (commit {git_revision()}).\n" \
               f"Machine: {machine()}.\n\n{_test_line(args.chosen, args.final_seeds, east)}\n"
        print(body)
        if not args.no_write:
            replace_section(BENCHMARKS, "Demo settings: the test, scored once (issue 15)", body)
        return
    scores = {}
    for name, config in CANDIDATES.items():
        runs = [validation_iou(config, seed, out / "select" / name.replace(" ", "").replace(";", "-").replace(",", ""))
                for seed in args.seeds]
        scores[name] = runs
        print(json.dumps({"candidate": name, "val_building_iou": runs}), flush=True)
    chosen = max(scores, key=lambda k: statistics.mean(scores[k]))
    east = final_scores(chosen, args.final_seeds, out)
    lines = [f"Command: `python -m bench.demo_settings {' '.join(sys.argv[1:])}` (commit {git_revision()}).",
             f"Machine: {machine()}.", "",
             "Selection: single models on the western two thirds, a quarter of it held out as validation blocks "
             f"(seeds {args.seeds}, each its own split); the eastern third is not read.", "",
             "| candidate | validation building IoU per seed | mean |", "|---|---|---:|"]
    lines += [f"| {name}{' (chosen)' if name == chosen else ''} | {', '.join(f'{v:.3f}' for v in runs)} | "
              f"{statistics.mean(runs):.3f} |" for name, runs in scores.items()]
    lines += ["", _test_line(chosen, args.final_seeds, east)]
    body = "\n".join(lines) + "\n"
    print(body)
    if not args.no_write:
        replace_section(BENCHMARKS, "Demo settings chosen on validation (issue 15)", body)


if __name__ == "__main__":
    main()
