"""Throughput of the Flink engine on a local standalone cluster with 1 and 2 TaskManagers, against plain
`predict_raster` and the embedded mini-cluster in the same run.

    .venv/bin/python -m bench.flink_cluster [--sizes 2 6] [--window 1024] [--overlap 64] [--threads 1]

Inputs: for each size N, N copies of each shipped raster (Atlanta 600x900, NC Landsat 489x443, Sentinel-2 384x384;
band 1). A tiny resnet18 U-Net is trained first (not timed). Each cluster (1 TaskManager x 1 slot, parallelism 1;
2 TaskManagers x 1 slot, parallelism 2) is started once (start time reported apart) and runs every size; the job's
own duration comes from the cluster's REST API, the wall time includes the client (`flink run`, PyFlink gateway).
The marginal rate between the two sizes (extra Mpx / extra job seconds) leaves out the fixed start-up of the job's
Python workers. Every model runs on `--threads` torch threads (OMP_NUM_THREADS for the Flink processes), so one
slot is one core's work and the 1-TaskManager rate is a per-core rate. Masks are checked equal to `predict_raster`'s.
Results go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import rasterio
import torch

from bench.common import git_revision, machine, replace_section
from bench.pipeline_throughput import BANDS, SOURCES, bench_predict, train_tiny

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "flink"


def make_inputs(copies: int) -> list[Path]:
    folder = OUT / f"inputs-{copies}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i in range(copies):
        for src in SOURCES:
            shutil.copy(src, folder / f"{src.stem}-{i}.tif")
    return sorted(folder.glob("*.tif"))


def megapixels(images: list[Path]) -> float:
    total = 0
    for image in images:
        with rasterio.open(image) as src:
            total += src.width * src.height
    return total / 1e6


def bench_flink(model: Path, images: list[Path], args: argparse.Namespace, name: str, parallelism: int,
                master: str | None) -> tuple[float, float | None]:
    """(wall seconds, the job's own seconds from REST or None) of one Flink job; checks masks against predict's."""
    from landsight.pipeline import JobConfig, run_flink
    from landsight.pipeline.flink_cluster import rest

    out = OUT / name / images[0].parent.name
    shutil.rmtree(out, ignore_errors=True)
    config = JobConfig(str(model), str(out), window=args.window, overlap=args.overlap, batch_size=args.batch_size,
                       bands=BANDS)
    start = time.perf_counter()
    summary = run_flink([str(p) for p in images], config, parallelism, flink_master=master, timeout=3600)
    wall = time.perf_counter() - start
    assert len(summary["done"]) == len(images), summary
    for image in images:
        with rasterio.open(OUT / "predict" / images[0].parent.name / image.name) as a, \
                rasterio.open(out / image.name) as b:
            assert np.array_equal(a.read(), b.read()), image
    if master is None:
        return wall, None
    jobs = sorted(rest(master, "/jobs/overview")["jobs"], key=lambda job: job["start-time"])
    return wall, jobs[-1]["duration"] / 1000


def row(label: str, mpx: float, seconds: float | None) -> str:
    if seconds is None:
        return f"| {label} | {mpx:.2f} | - | - |"
    return f"| {label} | {mpx:.2f} | {seconds:.1f} | {mpx / seconds:.3f} |"


def main() -> None:
    from landsight.pipeline.flink import flink_python
    from landsight.pipeline.flink_cluster import local_cluster

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[2, 6], help="copies of the 3 rasters, small and large")
    parser.add_argument("--window", type=int, default=1024)
    parser.add_argument("--overlap", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads of every model (default 1: a core)")
    parser.add_argument("--no-write", action="store_true", help="print, do not update BENCHMARKS.md")
    args = parser.parse_args()
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # inherited by the Flink job and cluster processes
    torch.set_num_threads(args.threads)
    OUT.mkdir(parents=True, exist_ok=True)
    model = OUT / "tiny.pt"
    if not model.exists():
        train_tiny(model)
    python = flink_python()
    sets = [make_inputs(n) for n in args.sizes]
    mpx = [megapixels(images) for images in sets]
    rows, marginal = [], {}
    for images, size in zip(sets, mpx, strict=True):
        rows.append(row(f"plain `predict_raster`, {len(images)} rasters (masks)", size,
                        bench_predict(model, images, args)))
    for images, size in zip(sets, mpx, strict=True):
        wall, _ = bench_flink(model, images, args, "mini", 1, None)
        rows.append(row(f"embedded mini-cluster, parallelism 1, {len(images)} rasters: wall", size, wall))
    for taskmanagers in (1, 2):
        started = time.perf_counter()
        with local_cluster(OUT / f"cluster-{taskmanagers}", python, taskmanagers, slots=1) as cluster:
            start_s = time.perf_counter() - started
            job_s = []
            for images, size in zip(sets, mpx, strict=True):
                wall, job = bench_flink(model, images, args, f"tm{taskmanagers}", taskmanagers, cluster.master)
                job_s.append(job)
                label = f"cluster, {taskmanagers} TaskManager(s), parallelism {taskmanagers}, {len(images)} rasters"
                rows += [row(f"{label}: wall", size, wall), row(f"{label}: job (REST)", size, job)]
        marginal[taskmanagers] = (mpx[1] - mpx[0]) / (job_s[1] - job_s[0])
        rows.append(f"| cluster start, {taskmanagers} TaskManager(s) | - | {start_s:.1f} | - |")
    command = "python -m bench.flink_cluster " + " ".join(sys.argv[1:])
    text = f"""
`{command.strip()}` (commit {git_revision()}): window {args.window} px, overlap {args.overlap} px, batch
{args.batch_size}, tiny resnet18 U-Net, band 1, CPU; masks + polygons + stats for the Flink rows, masks only for
`predict_raster`; {args.threads} torch thread(s) per model. Machine: {machine()}; 1-min load average at the end
{os.getloadavg()[0]:.1f}.
Every Flink mask checked equal to `predict_raster`'s.

| run | Mpx | seconds | Mpx/s |
| --- | ---: | ---: | ---: |
{chr(10).join(rows)}

Marginal rate (extra Mpx / extra job seconds between the two sizes): **{marginal[1]:.3f} Mpx/s with 1
TaskManager, {marginal[2]:.3f} Mpx/s with 2**, ratio 2 / 1: **{marginal[2] / marginal[1]:.2f}**.
"""
    print(text)
    if not args.no_write:
        replace_section(ROOT / "BENCHMARKS.md", "Flink standalone cluster, 1 and 2 TaskManagers (issue 16)", text)


if __name__ == "__main__":
    main()
