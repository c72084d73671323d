"""CPU `predict` end to end against a naive peer, measured in the same process on the same raster.

The naive peer is a plain PyTorch fp32 loop over non-overlapping 256 px windows, batch 1: read, normalize, forward,
argmax, write. landsight's `predict_raster` adds overlap and blending (more compute) but batches, reads ahead in a
thread and runs larger windows. Throughput is reported as 256x256 tiles of output area per second.

    .venv/bin/python -m bench.predict_speed [--size 2048] [--repeat 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from bench.common import OUT, git_revision, machine, model_file, replace_section, tiled_raster
from landsight.models.model_file import load_model_file
from landsight.predict import predict_raster


def naive_predict(model_path: Path, image: Path, out: Path, chip: int = 256) -> None:
    """The peer: fp32, batch 1, non-overlapping windows (edge windows padded to a multiple of 32)."""
    mf = load_model_file(model_path)
    model = mf.build()
    mean, std = mf.normalization.mean[0], mf.normalization.std[0]
    with rasterio.open(image) as src:
        profile = src.profile | {"dtype": "uint8", "count": 1, "nodata": 255}
        with rasterio.open(out, "w", **profile) as dst, torch.no_grad():
            for row in range(0, src.height, chip):
                for col in range(0, src.width, chip):
                    window = Window(col, row, min(chip, src.width - col), min(chip, src.height - row))
                    x = (src.read(1, window=window).astype(np.float32) - mean) / std
                    h, w = x.shape
                    x = np.pad(x, ((0, -h % 32), (0, -w % 32)), mode="reflect")
                    logits = model(torch.from_numpy(x)[None, None])
                    dst.write(logits[0].argmax(0)[:h, :w].numpy().astype(np.uint8), 1, window=window)


def timed(fn, repeat: int) -> float:
    """Best wall time of `repeat` runs, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    args = parser.parse_args()
    image = tiled_raster(OUT / f"atlanta-{args.size}.tif", args.size, args.size)
    model = model_file(OUT / "lite0-untrained.pt")
    tiles = args.size * args.size / 256**2
    naive_s = timed(lambda: naive_predict(model, image, OUT / "naive.tif"), args.repeat)
    ours_s = timed(lambda: predict_raster(model, image, OUT / "ours.tif", overwrite=True, device="cpu"),
                   args.repeat)
    lines = [f"| naive PyTorch fp32 loop, 256 px, no overlap, batch 1 | {naive_s:.1f} s | {tiles / naive_s:.2f} |",
             f"| `landsight predict` (window 1024, overlap 128, batch 1, COG) | {ours_s:.1f} s "
             f"| {tiles / ours_s:.2f} |"]
    ratio = naive_s / ours_s
    body = (f"Command: `.venv/bin/python -m bench.predict_speed --size {args.size} --repeat {args.repeat}` "
            f"(commit {git_revision()}).\nMachine: {machine()}.\nRaster: {args.size} x {args.size} px, 1 band "
            f"(the Atlanta sample tiled), EfficientNet-Lite0 U-Net; best of {args.repeat} runs each.\n\n"
            "| run | time | 256x256 tiles/s |\n|---|---|---|\n" + "\n".join(lines) +
            f"\n\n**Speed-up over the naive loop: {ratio:.2f}x** (target >= 1.5x).\n")
    print(body)
    if not args.no_write:
        replace_section(Path(__file__).resolve().parent.parent / "BENCHMARKS.md", "CPU predict throughput", body)


if __name__ == "__main__":
    main()
