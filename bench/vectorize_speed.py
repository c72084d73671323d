"""Polygons/s and Mpx/s of `landsight vectorize` against rasterio.features.shapes + shapely union per class, and the
pipeline with polygons against `landsight predict` followed by `landsight vectorize`.

    .venv/bin/python -m bench.vectorize_speed [--size 4096] [--pipeline-size 1024] [--repeats 2]

The mask is realistic and multi-class: the Atlanta sample image smoothed over 5 x 5 px and cut at its 35/70/90 %
brightness quantiles into background + 3 classes (about 1,000 polygons with holes per 600 x 900 px copy), tiled to
`--size` px in bench/out/ (never committed). Both sides read that GeoTIFF and write a GeoPackage in the mask's CRS.
The peer polygonizes the whole mask in one `shapes` call and unions the shapes per class (`shapely.union_all`),
which holds the whole mask and all its shapes in memory. Each side runs in-process, alternating, best of `--repeats`.
The pipeline part runs `landsight pipeline run` (Beam DirectRunner, masks + stats + polygons) and
`landsight predict` + `landsight vectorize` on the Atlanta sample tiled to `--pipeline-size` px with the untrained
EfficientNet-Lite0 U-Net of bench.common (speed does not depend on training). Results go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyogrio
import rasterio
import shapely
from rasterio import features as rio_features
from rasterio.windows import Window
from scipy import ndimage

from bench.common import OUT, SAMPLE, machine, model_file, replace_section, tiled_raster
from landsight.cli.main import cli
from landsight.labels.classes import ClassTable
from landsight.labels.rasterize import classes_tag

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ClassTable.from_names(["dark", "mid", "bright"], background=True)


def class_mask(path: Path, size: int) -> Path:
    """A size x size multi-class uint8 mask (see the module docstring), written block by block."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(SAMPLE) as src:
        smooth = ndimage.uniform_filter(src.read(1).astype(np.float32), 5)
        profile = src.profile
    tile = np.digitize(smooth, np.quantile(smooth, [0.35, 0.7, 0.9])).astype(np.uint8)
    mosaic = np.tile(tile, (-(-size // tile.shape[0]), -(-size // tile.shape[1])))[:size, :size]
    profile |= {"width": size, "height": size, "dtype": "uint8", "nodata": None, "tiled": True, "blockxsize": 512,
                "blockysize": 512, "compress": "deflate"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mosaic, 1, window=Window(0, 0, size, size))
        dst.update_tags(classes=classes_tag(CLASSES))
    return path


def peer(mask: Path, out: Path) -> int:
    """rasterio.features.shapes over the whole mask, shapely union per class, written with pyogrio."""
    with rasterio.open(mask) as src:
        data, transform, crs = src.read(1), src.transform, src.crs
    grouped: dict[int, list[shapely.Geometry]] = {}
    for geojson, value in rio_features.shapes(data, mask=data != 0, transform=transform, connectivity=4):
        grouped.setdefault(int(value), []).append(shapely.geometry.shape(geojson))
    geoms, values = [], []
    for value in sorted(grouped):
        parts = shapely.get_parts(shapely.union_all(grouped[value]))
        geoms.append(parts)
        values.append(np.full(len(parts), value, dtype=np.int64))
    geometry = np.concatenate(geoms)
    out.unlink(missing_ok=True)
    pyogrio.raw.write(out, shapely.to_wkb(geometry), [np.concatenate(values)], ["value"], driver="GPKG",
                      geometry_type="Polygon", crs=crs.to_wkt())
    return len(geometry)


def run_cli(*args: str) -> None:
    """One landsight command in this process (no interpreter start in the timing)."""
    cli.main(["-q", *args], standalone_mode=False)


def features_in(path: Path) -> int:
    return int(pyogrio.read_info(path)["features"])


def best(runs: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Best wall time of each callable over `repeats` alternating rounds."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(t) for name, t in times.items()}


def vectorize_part(size: int, repeats: int) -> tuple[str, list[str]]:
    folder = OUT / "vectorize"
    mask = class_mask(folder / f"classes-{size}.tif", size)
    ours, edges, two, theirs = (folder / f"{name}.gpkg" for name in ("ours", "edges", "two", "peer"))
    runs = {
        "landsight": lambda: run_cli("vectorize", str(mask), "-o", str(ours), "--crs", "raster", "--overwrite"),
        "landsight --pixel-edges": lambda: run_cli("vectorize", str(mask), "-o", str(edges), "--crs", "raster",
                                                   "--pixel-edges", "--overwrite"),
        "landsight --workers 2": lambda: run_cli("vectorize", str(mask), "-o", str(two), "--crs", "raster",
                                                 "--workers", "2", "--overwrite"),
        "peer": lambda: peer(mask, theirs),
    }
    seconds = best(runs, repeats)
    counts = {"landsight": features_in(ours), "landsight --pixel-edges": features_in(edges),
              "landsight --workers 2": features_in(two), "peer": features_in(theirs)}
    mpx = size * size / 1e6
    rows = [f"| {name} | {seconds[name]:.2f} | {counts[name]:,} | {counts[name] / seconds[name]:,.0f} | "
            f"{mpx / seconds[name]:.2f} |" for name in runs]
    ratio = seconds["peer"] / seconds["landsight"]
    ratio_edges = seconds["peer"] / seconds["landsight --pixel-edges"]
    ratio_two = seconds["peer"] / seconds["landsight --workers 2"]
    text = (f"Mask: {size} x {size} px ({mpx:.1f} Mpx), 3 classes + background. Speed-up over the peer: "
            f"**{ratio:.2f}x** (default: corners cut), **{ratio_edges:.2f}x** (`--pixel-edges`: the peer's "
            f"outlines; same polygon count: {counts['landsight --pixel-edges'] == counts['peer']}), "
            f"**{ratio_two:.2f}x** (`--workers 2`).")
    return text, ["| side | seconds | polygons | polygons/s | Mpx/s |", "| --- | ---: | ---: | ---: | ---: |", *rows]


def pipeline_part(size: int, repeats: int) -> tuple[str, list[str]]:
    folder = OUT / "vectorize-pipeline"
    image = tiled_raster(folder / f"atlanta-{size}.tif", size, size)
    model = model_file(OUT / "lite0-untrained.pt")
    two_step, beam_out = folder / "two-step", folder / "beam"

    def predict_then_vectorize() -> None:
        shutil.rmtree(two_step, ignore_errors=True)
        two_step.mkdir(parents=True)
        run_cli("predict", str(model), str(image), "-o", str(two_step / "mask.tif"))
        run_cli("vectorize", str(two_step / "mask.tif"), "-o", str(two_step / "mask.geojsonl"))

    def pipeline() -> None:
        shutil.rmtree(beam_out, ignore_errors=True)
        run_cli("pipeline", "run", "--input", str(image), "--model", str(model), "-o", str(beam_out))

    seconds = best({"two-step": predict_then_vectorize, "pipeline": pipeline}, repeats)
    n_two, n_beam = features_in(two_step / "mask.geojsonl"), features_in(beam_out / f"{image.stem}.geojsonl")
    ratio = seconds["two-step"] / seconds["pipeline"]
    mpx = size * size / 1e6
    text = (f"Pipeline: Atlanta tiled to {size} x {size} px ({mpx:.1f} Mpx), untrained Lite0 U-Net, CPU. Pipeline "
            f"with polygons against predict + vectorize: **{ratio:.2f}x** (target >= 0.9; polygons {n_beam:,} vs "
            f"{n_two:,}).")
    rows = ["| run | seconds | Mpx/s |", "| --- | ---: | ---: |",
            f"| `landsight predict` then `landsight vectorize` (.geojsonl) | {seconds['two-step']:.2f} | "
            f"{mpx / seconds['two-step']:.3f} |",
            f"| `landsight pipeline run` (DirectRunner; mask, stats, .geojsonl) | {seconds['pipeline']:.2f} | "
            f"{mpx / seconds['pipeline']:.3f} |"]
    return text, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=4096, help="Mask width and height, px.")
    parser.add_argument("--pipeline-size", type=int, default=1024, help="Image width and height, px; 0 skips it.")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    command = "python -m bench.vectorize_speed " + " ".join(sys.argv[1:])
    text, rows = vectorize_part(args.size, args.repeats)
    body = [f"`{command.strip()}`; machine: {machine()}. Best of {args.repeats} alternating runs, in-process.", "",
            text, "", *rows]
    if args.pipeline_size:
        text, rows = pipeline_part(args.pipeline_size, args.repeats)
        body += ["", text, "", *rows]
    body += ["", f"1-min load average at the end: {os.getloadavg()[0]:.1f} (other jobs on the same cores slow "
             "every side, the extra processes of `--workers` most)."]
    result = "\n".join(body) + "\n"
    print(result)
    replace_section(ROOT / "BENCHMARKS.md", "Vectorize speed (issue 14)", "\n" + result)


if __name__ == "__main__":
    main()
