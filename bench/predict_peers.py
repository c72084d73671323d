"""CPU `predict` end to end on a 4-band Sentinel-2 raster against two peers in the same run (issue 14, item 1).

The raster is the Sentinel-2 sample (uint16 B02 B03 B04 B08, tests/data/sentinel2-coast) tiled to --size px, written
under bench/out (never committed). The model is an EfficientNet-Lite0 U-Net for those 4 bands and 2 classes, untrained
(random init, torch seed 0): speed does not depend on the weights. Every run writes a class mask GeoTIFF.

- naive: plain PyTorch fp32 NCHW, non-overlapping 256 px windows, batch 1: read, normalize, forward, argmax, write.
- torchgeo: torchgeo's own inference loop, RasterDataset + GridGeoSampler (256 px, stride 256) + DataLoader (batch 8,
  one worker process, `stack_samples`), fp32 NCHW under `torch.inference_mode`, argmax written by window.
- landsight: `predict_raster` with its defaults (overlap and blending, COG output with provenance tags).

Runs alternate (naive, torchgeo, landsight, naive, ...); the best of --repeat runs of each counts, because load from
other processes only slows a run down.

    .venv/bin/python -m bench.predict_peers [--size 8192] [--repeat 1] [--no-torchgeo] [--no-write]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from bench.common import OUT, S2_SAMPLE, git_revision, machine, replace_section, s2_model_file, tiled_raster
from landsight.models.model_file import load_model_file
from landsight.predict import predict_raster

CHIP = 256


def naive_predict(model_path: Path, image: Path, out: Path) -> None:
    """The plain peer: fp32 NCHW, batch 1, non-overlapping 256 px windows (edge windows padded to a multiple of 32)."""
    mf = load_model_file(model_path)
    model = mf.build()
    mean = np.asarray(mf.normalization.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(mf.normalization.std, dtype=np.float32)[:, None, None]
    with rasterio.open(image) as src:
        profile = src.profile | {"dtype": "uint8", "count": 1, "nodata": 255}
        with rasterio.open(out, "w", **profile) as dst, torch.no_grad():
            for row in range(0, src.height, CHIP):
                for col in range(0, src.width, CHIP):
                    window = Window(col, row, min(CHIP, src.width - col), min(CHIP, src.height - row))
                    x = (src.read(window=window).astype(np.float32) - mean) / std
                    h, w = x.shape[1:]
                    x = np.pad(x, ((0, 0), (0, -h % 32), (0, -w % 32)), mode="reflect")
                    logits = model(torch.from_numpy(x)[None])
                    dst.write(logits[0].argmax(0)[:h, :w].numpy().astype(np.uint8), 1, window=window)


def torchgeo_predict(model_path: Path, image: Path, out: Path, batch_size: int = 8, workers: int = 1) -> None:
    """torchgeo's inference loop: RasterDataset + GridGeoSampler + DataLoader, fp32 NCHW, argmax written by window."""
    from torch.utils.data import DataLoader
    from torchgeo.datasets import RasterDataset, stack_samples
    from torchgeo.samplers import GridGeoSampler

    class Scene(RasterDataset):  # type: ignore[misc]
        filename_glob = image.name
        is_image = True

    mf = load_model_file(model_path)
    model = mf.build()
    mean = torch.tensor(mf.normalization.mean)[None, :, None, None]
    std = torch.tensor(mf.normalization.std)[None, :, None, None]
    dataset = Scene(paths=str(image.parent))
    sampler = GridGeoSampler(dataset, size=CHIP, stride=CHIP)
    loader = DataLoader(dataset, sampler=sampler, batch_size=batch_size, num_workers=workers,
                        collate_fn=stack_samples)
    with rasterio.open(image) as src:
        profile = src.profile | {"dtype": "uint8", "count": 1, "nodata": 255}
        inverse = ~src.transform
        with rasterio.open(out, "w", **profile) as dst, torch.inference_mode():
            for batch in loader:
                masks = model((batch["image"] - mean) / std).argmax(1).numpy().astype(np.uint8)
                for mask, bounds in zip(masks, batch["bounds"], strict=True):
                    col, row = (round(v) for v in inverse * (bounds[0].start, bounds[1].stop))
                    h, w = min(CHIP, src.height - row), min(CHIP, src.width - col)
                    dst.write(mask[:h, :w], 1, window=Window(col, row, w, h))


def agreement(a: Path, b: Path) -> float:
    """Share of pixels whose class is the same in two masks of one raster (read by 1024-row strips)."""
    same = total = 0
    with rasterio.open(a) as ra, rasterio.open(b) as rb:
        for row in range(0, ra.height, 1024):
            window = Window(0, row, ra.width, min(1024, ra.height - row))
            x, y = ra.read(1, window=window), rb.read(1, window=window)
            same += int((x == y).sum())
            total += x.size
    return same / total


def cpu_seconds() -> float:
    """User + system CPU time of this process and its finished children (torchgeo's loader workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def run_peers(peers: dict[str, Callable[[], Any]], repeat: int) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds of each peer over `repeat` alternating rounds: the CPU time is less disturbed by other
    processes on shared cores (ONNX Runtime's spinning threads count in it)."""
    best = dict.fromkeys(peers, (float("inf"), float("inf")))
    for _ in range(repeat):
        for name, fn in peers.items():
            t0, c0 = time.perf_counter(), cpu_seconds()
            fn()
            wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
            best[name] = (min(best[name][0], wall), min(best[name][1], cpu))
            print(f"{name}: {wall:.1f} s wall, {cpu:.1f} CPU-s", flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-torchgeo", action="store_true", help="Skip the torchgeo peer.")
    parser.add_argument("--backends", action="store_true",
                        help="Also run landsight with `backend` torch and onnx forced (which one auto picks depends "
                             "on the raster's size).")
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    args = parser.parse_args()
    image = tiled_raster(OUT / f"s2-{args.size}.tif", args.size, args.size, sample=S2_SAMPLE)
    model = s2_model_file(OUT / "s2-lite0-untrained.pt")
    peers: dict[str, Callable[[], Any]] = {"naive": lambda: naive_predict(model, image, OUT / "peer-naive.tif")}
    if not args.no_torchgeo:
        peers["torchgeo"] = lambda: torchgeo_predict(model, image, OUT / "peer-torchgeo.tif")
    peers["landsight"] = lambda: predict_raster(model, image, OUT / "peer-landsight.tif", overwrite=True,
                                                device="cpu")
    for backend in ("torch", "onnx") if args.backends else ():
        peers[f"landsight-{backend}"] = lambda b=backend: predict_raster(
            model, image, OUT / f"peer-landsight-{b}.tif", overwrite=True, device="cpu", backend=b)
    best = run_peers(peers, args.repeat)
    print(report(args, best, image))


def report(args: argparse.Namespace, best: dict[str, tuple[float, float]], image: Path) -> str:
    """The BENCHMARKS.md section (also printed); written unless --no-write."""
    import torchgeo

    tiles = args.size * args.size / CHIP**2
    labels = {"naive": "naive PyTorch loop: fp32 NCHW, 256 px, no overlap, batch 1",
              "torchgeo": f"torchgeo {torchgeo.__version__}: RasterDataset + GridGeoSampler 256/256 + DataLoader "
                          "(batch 8, 1 worker), fp32 NCHW",
              "landsight": "`landsight predict` (defaults: window 1024, overlap 128, blend, COG)",
              "landsight-torch": "`landsight predict --backend torch` (channels-last PyTorch fp32)",
              "landsight-onnx": "`landsight predict --backend onnx` (ONNX Runtime fp32, exported in memory)"}
    with rasterio.open(OUT / "peer-landsight.tif") as src:
        labels["landsight"] += f", ran on {json.loads(src.tags()['inference'])['backend']}"
    wall0, cpu0 = best["naive"]
    rows = [f"| {labels[k]} | {w:.1f} s | {tiles / w:.2f} | **{wall0 / w:.2f}x** | {c:.1f} s | {cpu0 / c:.2f}x |"
            for k, (w, c) in best.items()]
    same = agreement(OUT / "peer-naive.tif", OUT / "peer-landsight.tif")
    flags = (["--size", str(args.size), "--repeat", str(args.repeat)] + (["--no-torchgeo"] if args.no_torchgeo else [])
             + (["--backends"] if args.backends else []))
    body = (f"Command: `.venv/bin/python -m bench.predict_peers {' '.join(flags)}` (commit {git_revision()}).\n"
            f"Machine: {machine()}; load average at the end {os.getloadavg()[0]:.1f} (other processes share these "
            "cores).\n"
            f"Raster: {args.size} x {args.size} px, 4 bands uint16 (the Sentinel-2 sample tiled, deflate), "
            "EfficientNet-Lite0 U-Net, untrained (random init, seed 0; speed does not depend on weights); best of "
            f"{args.repeat} alternating run(s) each.\n\n"
            "| run | wall time | 256x256 tiles/s | vs naive (wall) | CPU time | vs naive (CPU) |\n"
            "|---|---|---|---|---|---|\n" + "\n".join(rows) +
            f"\n\nlandsight's mask equals the naive loop's on {same:.1%} of pixels (the rest: window borders, "
            "where landsight blends overlapping windows and the naive loop sees no context).\n")
    if not args.no_write:
        replace_section(Path(__file__).resolve().parent.parent / "BENCHMARKS.md",
                        f"CPU predict against peers, {args.size} px (issue 14)", body)
    return body


if __name__ == "__main__":
    main()
