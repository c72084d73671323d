"""Data-parallel training against one process: validation mIoU of `landsight train` with `--devices 1` and
`--devices 2` (two CPU processes, gloo) on the Atlanta sample, over several seeds, with wall time.

`--batch-size` is the batch of all processes together, so both runs take the same optimizer steps on the same
number of chips per epoch; what differs is which chips each step sees and the batch-norm statistics (per process).

    .venv/bin/python -m bench.ddp_parity [--seeds 0 1 2] [--epochs 4] [--no-write]
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
from landsight.models.model_file import load_model_file

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
SAMPLE = Path(__file__).resolve().parent.parent / "landsight" / "sample_data"


def train(devices: int, seed: int, args: argparse.Namespace, out_dir: Path) -> dict:
    """One `landsight train` run; its validation mIoU and wall time."""
    landsight = shutil.which("landsight", path=str(Path(sys.executable).parent)) or "landsight"
    model = out_dir / f"devices{devices}-seed{seed}.pt"
    command = [landsight, "train", str(SAMPLE / "atlanta.tif"), str(SAMPLE / "atlanta-buildings.geojson"),
               "-o", str(model), "--class-name", "building", "--chip-size", "128", "--epochs", str(args.epochs),
               "--chips-per-epoch", "32", "--batch-size", "8", "--seed", str(seed), "--devices", str(devices),
               "--overwrite", "--restart"]
    started = time.monotonic()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    return {"devices": devices, "seed": seed, "miou": load_model_file(model).metrics["mean_iou"], "seconds": seconds}


def table(rows: list[dict], args: argparse.Namespace, command: str) -> str:
    """The BENCHMARKS.md section."""
    lines = [f"Command: `{command}` (commit {git_revision()}); U-Net/EfficientNet-Lite0, 128 px chips, "
             f"{args.epochs} epochs of 32 chips, batch 8 (all processes together).", f"Machine: {machine()}.", "",
             "| devices | seeds | validation mIoU mean | spread (std) | per seed | mean seconds |",
             "|---:|---:|---:|---:|---|---:|"]
    for devices in (1, 2):
        picked = [r for r in rows if r["devices"] == devices]
        mious = [r["miou"] for r in picked]
        lines.append(f"| {devices} | {len(picked)} | {statistics.mean(mious):.3f} | "
                     f"{statistics.stdev(mious) if len(mious) > 1 else 0:.3f} | "
                     f"{', '.join(f'{m:.3f}' for m in mious)} | {statistics.mean(r['seconds'] for r in picked):.0f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    args = parser.parse_args()
    out_dir = OUT / "ddp"
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        for devices in (1, 2):
            rows.append(train(devices, seed, args, out_dir))
            print(json.dumps(rows[-1]))
    body = table(rows, args, "python -m bench.ddp_parity " + " ".join(sys.argv[1:]))
    print(body)
    if not args.no_write:
        replace_section(BENCHMARKS, "Data-parallel training on CPU (issue 11)", body)


if __name__ == "__main__":
    main()
