"""The cloud gate's test score over several spatially blocked splits of one scene.

One scene gives a test split of two or three blocks, so a single run's cloudy-class F1 says as much about which
blocks were held out as about the gate. This runs `landsight cloud train` once per `--seed` (each seed draws another
split and another training run) and tabulates the test scores from each report, next to the report's baseline
(logistic regression on per-band chip statistics).

    .venv/bin/python -m bench.cloud_gate_splits IMAGE --cloud-mask QA.tif [--seeds 0 1 2 3 4] [--stride 32]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import OUT, git_revision, machine, replace_section

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def train_gate(image: str, mask: str, seed: int, args: argparse.Namespace, out_dir: Path) -> dict:
    """Run `landsight cloud train` for one seed; return its report."""
    landsight = shutil.which("landsight", path=str(Path(sys.executable).parent)) or "landsight"
    model = out_dir / f"gate-seed{seed}.pt"
    command = [landsight, "cloud", "train", image, "--cloud-mask", mask, "--chip-size", str(args.chip_size),
               "--stride", str(args.stride), "--cloudy-if", str(args.cloudy_if), "--budget", args.budget,
               "--seed", str(seed), "-o", str(model), "--overwrite"]
    command += [f"--{flag}={value}" for flag, value in (("scale", args.scale), ("offset", args.offset),
                                                         ("units", args.units)) if value is not None]
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    report = json.loads(model.with_name(f"{model.stem}-report.json").read_text())
    report["bench_seconds"] = time.monotonic() - started
    return report


def row(seed: int, report: dict) -> dict:
    """The cloudy class's test scores and the test split's make-up."""
    cloudy = report["test"]["per_class"]["cloudy"]
    counts = report["split"]["class_counts"]
    return {"seed": seed, "f1": cloudy["f1"], "precision": cloudy["precision"], "recall": cloudy["recall"],
            "cloudy": counts["cloudy"]["test"], "clear": counts["clear"]["test"],
            "epoch": report["chosen"]["best_epoch"], "seconds": report["bench_seconds"],
            "baseline_f1": report["baseline"]["test"]["per_class"]["cloudy"]["f1"],
            "network_f1": report.get("network_test", report["test"])["per_class"]["cloudy"]["f1"],
            "kept": report.get("kept", "network")}


def table(rows: list[dict], args: argparse.Namespace, command: str) -> str:
    """The BENCHMARKS.md section."""
    f1s = [r["f1"] or 0.0 for r in rows]
    lines = [f"Command: `{command}` (commit {git_revision()}); `cloud train` defaults (`--model auto`: the network "
             "or the chip-statistics baseline, whichever scores higher on validation); "
             f"{args.chip_size} px chips every {args.stride} px, "
             f"cloudy when high-confidence cloud covers >= {args.cloudy_if:g} of a chip, `--budget {args.budget}`.",
             f"Machine: {machine()}; `landsight` chose its own CPU threads (auto).", "",
             "| seed | cloudy F1 | precision | recall | test chips cloudy / clear | best epoch | seconds "
             "| kept (on validation) | network F1 | baseline F1 |",
             "|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    lines += [f"| {r['seed']} | {r['f1']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | {r['cloudy']} / "
              f"{r['clear']} | {r['epoch']} | {r['seconds']:.0f} | {r['kept']} | {r['network_f1']:.3f} | "
              f"{r['baseline_f1']:.3f} |" for r in rows]
    baseline = [r["baseline_f1"] or 0.0 for r in rows]
    lines += ["", f"Mean cloudy F1 **{statistics.mean(f1s):.3f}**, lowest {min(f1s):.3f}; "
              f"{sum(f >= 0.9 for f in f1s)} of {len(f1s)} splits at 0.9 or more. The report's baseline (logistic "
              f"regression on per-band chip statistics, same split): mean {statistics.mean(baseline):.3f}, lowest "
              f"{min(baseline):.3f}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("image")
    parser.add_argument("--cloud-mask", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--chip-size", type=int, default=64)
    parser.add_argument("--stride", type=int, default=32)
    parser.add_argument("--cloudy-if", type=float, default=0.05)
    parser.add_argument("--budget", default="5m")
    parser.add_argument("--scale", default=None, help="Passed to cloud train, e.g. 2e-5 (Landsat-8 Level-1 DN).")
    parser.add_argument("--offset", default=None, help="Passed to cloud train, e.g. -0.1 (Landsat-8 Level-1 DN).")
    parser.add_argument("--units", choices=["dn", "reflectance"], default=None, help="Passed to cloud train.")
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    args = parser.parse_args()
    out_dir = OUT / "cloud-gate"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        rows.append(row(seed, train_gate(args.image, args.cloud_mask, seed, args, out_dir)))
        print(json.dumps(rows[-1]))
    command = "python -m bench.cloud_gate_splits " + " ".join(sys.argv[1:])
    body = table(rows, args, command)
    print(body)
    if not args.no_write:
        title = ("Cloud gate in reflectance across splits (issue 15)" if args.units == "reflectance" else
                 "Cloud gate across splits (issue 3)")
        replace_section(BENCHMARKS, title, body)


if __name__ == "__main__":
    main()
