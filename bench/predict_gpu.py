"""GPU `predict` against the model alone, and the model alone against the GPU's bf16 compute ceiling (issue 14, item 2).

1. predict: `predict_raster` on a --size x --size px 4-band uint16 deflate COG (the Sentinel-2 sample tiled, built
   by this script under bench/out), end to end (read, normalize, overlap, blend, write COG), PyTorch backend.
2. model-only: the same network (the same `TorchBackend`: device, precision, memory format) on random batches of
   --batch windows of --window px already on the device, synchronized, for --seconds.
3. ceiling: FLOPs per 256 x 256 tile, counted by `torch.utils.flop_counter.FlopCounterMode` on one window (2 FLOPs
   per multiply-add, convolutions and matmuls), x model-only tiles/s / --peak-tflops. The default peak, 989 TFLOPS, is
   NVIDIA's dense (no sparsity) BF16 Tensor Core figure for the H100/H200 SXM; give yours for another GPU.

Targets (issue 14): predict >= 0.7x model-only; model-only >= 25 % of the ceiling. The network is the untrained
(seed 0) EfficientNet-Lite0 U-Net for 4 bands of bench/predict_peers.py; speed does not depend on weights.

    .venv/bin/python -m bench.predict_gpu                        # on a GPU machine: 16,384 px, bf16 (auto)
    .venv/bin/python -m bench.predict_gpu --device cpu --size 2048   # the CPU check of the same script
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import OUT, S2_SAMPLE, git_revision, machine, replace_section, s2_model_file, tiled_raster
from landsight.imagery.io import to_cog
from landsight.models.backends import TorchBackend
from landsight.models.model_file import load_model_file
from landsight.predict import predict_raster

TILE = 256


def cog_raster(size: int) -> Path:
    """The Sentinel-2 sample tiled to size x size px, as a deflate COG (reused when present)."""
    path = OUT / f"s2-{size}-cog.tif"
    if not path.exists():
        tiled = tiled_raster(OUT / f"s2-{size}.tif", size, size, sample=S2_SAMPLE)
        tmp = path.with_name(path.name + ".part")
        to_cog(tiled, tmp)
        tmp.replace(path)
    return path


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only(backend: TorchBackend, batch: int, window: int, seconds: float) -> float:
    """256 px tiles/s of the network alone on random normalized batches resident on its device."""
    x = torch.randn(batch, 4, window, window, device=backend.device)
    if backend.device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    tiles_per_call = batch * window * window / TILE**2
    with torch.inference_mode(), torch.autocast(backend.device.type, torch.bfloat16,
                                                enabled=backend.precision == "bf16"):
        backend.model(x)  # warm-up: kernel selection, allocator
        synchronize(backend.device)
        calls, start = 0, time.perf_counter()
        while calls < 2 or time.perf_counter() - start < seconds:
            backend.model(x)
            calls += 1
        synchronize(backend.device)
    return calls * tiles_per_call / (time.perf_counter() - start)


def flops_per_tile(backend: TorchBackend, window: int) -> float:
    """FLOPs of one forward pass over a window, per 256 x 256 px tile of it."""
    x = torch.randn(1, 4, window, window, device=backend.device)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        backend.model(x)
    return counter.get_total_flops() / (window * window / TILE**2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--size", type=int, default=16384, help="Raster width and height in px.")
    parser.add_argument("--window", type=int, default=1024, help="predict's window and the model-only input, px.")
    parser.add_argument("--batch", type=int, help="Windows per forward pass, predict and model-only (default 8 on "
                                                   "CUDA, 1 on the CPU).")
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                        help="auto: bf16 on CUDA (and CPUs with native bf16), fp32 elsewhere.")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="Dense bf16 peak of the device (989: H100/H200 SXM Tensor Cores).")
    parser.add_argument("--seconds", type=float, default=20.0, help="How long model-only runs.")
    parser.add_argument("--no-write", action="store_true", help="Do not update BENCHMARKS.md.")
    args = parser.parse_args()
    args.batch = args.batch or (8 if args.device == "cuda" else 1)

    t0 = time.perf_counter()
    image = cog_raster(args.size)
    build_s = time.perf_counter() - t0
    model = s2_model_file(OUT / "s2-lite0-untrained.pt")
    backend = TorchBackend(load_model_file(model), args.device, args.precision)
    flops = flops_per_tile(backend, args.window)
    alone = model_only(backend, args.batch, args.window, args.seconds)
    t0 = time.perf_counter()
    predict_raster(model, image, OUT / "gpu-predict.tif", overwrite=True, device=args.device,
                   batch_size=args.batch, window=args.window, precision=args.precision, backend="torch")
    predict_s = time.perf_counter() - t0
    tiles = args.size * args.size / TILE**2
    ours = tiles / predict_s
    ceiling = 100 * flops * alone / (args.peak_tflops * 1e12)
    device = torch.cuda.get_device_name() if args.device == "cuda" else "CPU only: no GPU run"
    body = (f"Command: `.venv/bin/python -m bench.predict_gpu --device {args.device} --size {args.size} --window "
            f"{args.window} --batch {args.batch} --precision {args.precision} --peak-tflops {args.peak_tflops:g}` "
            f"(commit {git_revision()}).\nDevice: {device}; host: {machine()}.\n"
            f"Raster: {args.size} x {args.size} px 4-band uint16 deflate COG (built in {build_s:.0f} s); untrained "
            f"EfficientNet-Lite0 U-Net, precision {backend.precision}, {flops / 1e9:.2f} GFLOP per 256 px tile.\n\n"
            "| run | time | 256x256 tiles/s | ratio |\n|---|---|---|---|\n"
            f"| model-only: random batches of {args.batch} x {args.window} px on the device | {args.seconds:g} s | "
            f"{alone:.2f} | - |\n"
            f"| `landsight predict` end to end (window {args.window}, overlap 128, batch {args.batch}, COG) | "
            f"{predict_s:.1f} s | {ours:.2f} | {ours / alone:.2f}x model-only (target >= 0.7x) |\n"
            f"| model-only vs the {args.peak_tflops:g} TFLOPS bf16 ceiling | | {flops * alone / 1e12:.3g} TFLOPS "
            f"| {ceiling:.3g} % of the ceiling (target >= 25 %) |\n")
    if args.device == "cpu":
        body += ("\nThis is the script's CPU check: the GPU run has not been done (no GPU was lent to this "
                 "session), and a CPU's share of a GPU's peak means nothing.\n")
    print(body)
    if not args.no_write:
        replace_section(Path(__file__).resolve().parent.parent / "BENCHMARKS.md",
                        f"GPU predict against model-only ({args.device}, {args.size} px, issue 14)", body)


if __name__ == "__main__":
    main()
