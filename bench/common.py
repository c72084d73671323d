"""Shared bench helpers: synthetic-size rasters tiled from the real sample, an untrained model file, machine info."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import numpy as np
import rasterio
from rasterio.windows import Window

from landsight.hardware import inference_flags
from landsight.imagery.bands import BandSpec, Normalization
from landsight.labels.classes import ClassTable
from landsight.models.model_file import ModelFile
from landsight.models.registry import create_model

SAMPLE = Path(__file__).resolve().parent.parent / "landsight" / "sample_data" / "atlanta.tif"
S2_SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "sentinel2-coast" / "s2-crop.tif"
"""384 x 384 px Sentinel-2 L1C crop, uint16 B02 B03 B04 B08 (see tests/data/ATTRIBUTION.md)."""
OUT = Path(__file__).resolve().parent / "out"


def tiled_raster(path: Path, width: int, height: int, block: int = 512, sample: Path = SAMPLE) -> Path:
    """Write a width x height tiled, deflate GeoTIFF by repeating `sample` (all its bands), block by block (bounded
    memory); an existing `path` is reused."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(sample) as src:
        tile = src.read()
        descriptions = src.descriptions
        profile = src.profile | {"width": width, "height": height, "tiled": True, "blockxsize": 512,
                                 "blockysize": 512, "compress": "deflate", "BIGTIFF": "IF_SAFER"}
    reps = (1, -(-block // tile.shape[1]) + 1, -(-block // tile.shape[2]) + 1)
    mosaic = np.tile(tile, reps)
    tmp = path.with_name(path.name + ".part")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.descriptions = descriptions
        for row in range(0, height, block):
            for col in range(0, width, block):
                h, w = min(block, height - row), min(block, width - col)
                r0, c0 = row % tile.shape[1], col % tile.shape[2]
                dst.write(mosaic[:, r0:r0 + h, c0:c0 + w], window=Window(col, row, w, h))
    tmp.replace(path)
    return path


def model_file(path: Path, chip: int = 256) -> Path:
    """An ImageNet-initialised EfficientNet-Lite0 U-Net for 1 band / 2 classes (speed does not depend on training)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        model = create_model("unet", "tf_efficientnet_lite0", 1, 2, weights="imagenet")
        ModelFile("unet", "tf_efficientnet_lite0", BandSpec((1,), ("b1",)), Normalization((460.0,), (276.0,)),
                  ClassTable.from_names(["building"], background=True), chip, model.state_dict()).save(path)
    return path


def s2_model_file(path: Path, chip: int = 256, seed: int = 0) -> Path:
    """An untrained (random init, torch seed `seed`) EfficientNet-Lite0 U-Net for the 4 Sentinel-2 bands / 2 classes,
    normalized with the sample's band statistics (speed does not depend on the weights)."""
    if not path.exists():
        import torch

        path.parent.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(seed)
        model = create_model("unet", "tf_efficientnet_lite0", 4, 2)
        with rasterio.open(S2_SAMPLE) as src:
            data = src.read().astype(np.float64)
            names = tuple(d or f"b{i}" for i, d in enumerate(src.descriptions, start=1))
        mean = tuple(float(v) for v in data.mean(axis=(1, 2)))
        std = tuple(float(v) for v in data.std(axis=(1, 2)))
        ModelFile("unet", "tf_efficientnet_lite0", BandSpec((1, 2, 3, 4), names, 4), Normalization(mean, std),
                  ClassTable.from_names(["water"], background=True), chip, model.state_dict()).save(path)
    return path


def machine() -> str:
    """One line describing the CPU, cores and library versions."""
    import torch

    cpu = platform.processor() or "cpu"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    flags = " ".join(inference_flags()) or "no AVX2/AVX-512/AMX"
    return (f"{cpu} ({flags}), {os.cpu_count()} cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def replace_section(path: Path, title: str, body: str) -> None:
    """Replace (or append) the `## title` section of BENCHMARKS.md."""
    intro = "# Benchmarks\n\nMeasured by the scripts in bench/; each section says how.\n"
    text = path.read_text() if path.exists() else intro
    header = f"## {title}\n"
    if header in text:
        start = text.index(header)
        end = text.find("\n## ", start + len(header))
        text = text[:start] + header + body + (text[end:] if end != -1 else "\n")
    else:
        text = text.rstrip("\n") + "\n\n" + header + body + "\n"
    path.write_text(text)


def git_revision() -> str:
    """Short commit hash of the working tree, for the record."""
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
