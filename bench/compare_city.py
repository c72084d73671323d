"""`landsight compare` at city scale (100,000 buildings) against a geopandas peer: wall time and peak RSS of each.

    .venv/bin/python -m bench.compare_city [--buildings 100000] [--variants 8]

Inputs, built in bench/out/compare-city/ (never committed): the Atlanta sample's 32 OSM buildings and its 600 x 900
px grid (0.5 m) repeated by translation into a grid of copies until `--buildings` is reached (a 56 x 56 grid:
33,600 x 50,400 px, 16.8 x 25.2 km, 100,352 buildings with all their OSM attributes, in a GeoPackage). The
"prediction" is a 0/1 building mask on that grid, burnt from the same buildings copy by copy, each copy one of
`--variants` seeded variants in which 10 % of the buildings are removed (unsupported), 15 % shifted by 1.5-3 m
(shifted), the rest grown or shrunk by up to 0.25 m, plus one invented building (missing from the open data).

Both sides run in a fresh subprocess (interpreter start and imports included) under /usr/bin/time, which gives
wall and CPU seconds and the peak RSS. `landsight compare MASK OSM -o DIR` does it all: per-tile IoU/QoD on z18
tiles, per-feature confirmed/shifted/unsupported/missing with offsets, the GeoJSON layers and the review map. The
peer does the usual geopandas recipe for the feature part only: polygonize the mask window by window
(rasterio.features.shapes, 4096 px), `sjoin` the buildings with the predicted polygons, `overlay` (intersection)
for each building's IoU, confirmed when IoU >= 0.5, and `overlay` (difference) for the predicted area that no
building explains; it writes the statuses to a GeoPackage. Results go to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyogrio
import rasterio
import shapely
from rasterio import features as rio_features
from rasterio.transform import Affine
from rasterio.windows import Window

from bench.common import OUT, SAMPLE, machine, replace_section

ROOT = Path(__file__).resolve().parent.parent
BUILDINGS = SAMPLE.parent / "atlanta-buildings.geojson"
FOLDER = OUT / "compare-city"


def grid_shape(buildings: int, per_copy: int) -> tuple[int, int]:
    """(columns, rows) of a square-ish grid of copies holding at least `buildings` buildings."""
    side = math.ceil(math.sqrt(buildings / per_copy))
    return side, side


def variant_tile(geoms: np.ndarray, transform: Affine, shape: tuple[int, int], seed: int) -> np.ndarray:
    """One copy of the synthetic prediction: buildings removed, shifted, grown/shrunk, one invented (0/1 mask)."""
    rng = np.random.default_rng(seed)
    fate = rng.random(len(geoms))
    kept = []
    for geom, f in zip(geoms, fate, strict=True):
        if f < 0.10:
            continue  # removed: unsupported
        if f < 0.25:
            angle, dist = rng.uniform(0, 2 * np.pi), rng.uniform(1.5, 3.0)
            geom = shapely.affinity.translate(geom, dist * np.cos(angle), dist * np.sin(angle))
        kept.append(shapely.buffer(geom, rng.uniform(-0.25, 0.25), join_style="mitre"))
    x, y = transform.c + rng.uniform(10, 250), transform.f - rng.uniform(10, 400)
    kept.append(shapely.box(x, y - 12, x + 15, y))  # invented, 15 x 12 m: missing from the open data
    return rio_features.rasterize(kept, out_shape=shape, transform=transform, fill=0, default_value=1, dtype="uint8")


def build_inputs(buildings: int, variants: int) -> tuple[Path, Path, int]:
    """The tiled buildings (GeoPackage) and prediction mask (GeoTIFF); returns them and the building count."""
    cols, rows = grid_shape(buildings, len(json.loads(BUILDINGS.read_text())["features"]))
    mask, osm = FOLDER / f"prediction-{cols}x{rows}.tif", FOLDER / f"osm-{cols}x{rows}.gpkg"
    FOLDER.mkdir(parents=True, exist_ok=True)
    info, _, geometry, fields = pyogrio.raw.read(BUILDINGS)
    geoms = shapely.from_wkb(geometry)
    with rasterio.open(SAMPLE) as src:
        profile, width, height, transform = src.profile, src.width, src.height, src.transform
    dx, dy = width * transform.a, height * transform.e
    if not osm.exists():
        offsets = [(c * dx, r * dy) for r in range(rows) for c in range(cols)]
        tiled = np.concatenate([shapely.transform(geoms, lambda xy, o=o: xy + o) for o in offsets])
        columns = [np.tile(f, len(offsets)) for f in fields]
        pyogrio.raw.write(osm, shapely.to_wkb(tiled), columns, list(info["fields"]), driver="GPKG",
                          geometry_type="Polygon", crs=info["crs"])
    if not mask.exists():
        tiles = [variant_tile(geoms, transform, (height, width), seed) for seed in range(variants)]
        profile |= {"width": cols * width, "height": rows * height, "dtype": "uint8", "nodata": None, "count": 1,
                    "tiled": True, "blockxsize": 512, "blockysize": 512, "compress": "deflate", "BIGTIFF": "YES"}
        choice = np.random.default_rng(0).integers(variants, size=(rows, cols))
        with rasterio.open(mask, "w", **profile) as dst:
            for r in range(rows):
                strip = np.hstack([tiles[v] for v in choice[r]])
                dst.write(strip, 1, window=Window(0, r * height, cols * width, height))
            dst.update_tags(classes=json.dumps([{"value": 0, "name": "background", "color": "#000000"},
                                                {"value": 1, "name": "building", "color": "#d62728"}]))
    return mask, osm, cols * rows * len(geoms)


def peer(mask: Path, osm: Path, out: Path) -> None:
    """The geopandas recipe (see the module docstring)."""
    import geopandas as gpd

    buildings = gpd.read_file(osm)
    pieces = []
    with rasterio.open(mask) as src:
        for row in range(0, src.height, 4096):
            for col in range(0, src.width, 4096):
                window = Window(col, row, min(4096, src.width - col), min(4096, src.height - row))
                data = src.read(1, window=window)
                shapes = rio_features.shapes(data, mask=data == 1, transform=src.window_transform(window))
                pieces += [shapely.geometry.shape(g) for g, _ in shapes]
    pred = gpd.GeoDataFrame({"pred_id": np.arange(len(pieces))}, geometry=pieces, crs=buildings.crs)
    buildings["bid"] = np.arange(len(buildings))
    pairs = gpd.sjoin(buildings[["bid", "geometry"]], pred, predicate="intersects")
    near = pred.loc[pairs["pred_id"].unique()]
    inter = gpd.overlay(buildings[["bid", "geometry"]], near, how="intersection", keep_geom_type=True)
    overlap = inter.assign(area=inter.area).groupby("bid")["area"].sum()
    pred_area = near.assign(area=near.area).set_index("pred_id")["area"]
    touched = pairs.groupby("bid")["pred_id"].apply(lambda ids: pred_area.loc[ids].sum())
    own = buildings.set_index("bid").area
    iou = (overlap / (own + touched.reindex(overlap.index) - overlap)).reindex(own.index).fillna(0.0)
    buildings["iou"] = iou.to_numpy()
    buildings["status"] = np.where(iou >= 0.5, "confirmed", np.where(iou > 0, "shifted", "unsupported"))
    missing = gpd.overlay(pred, buildings[["geometry"]], how="difference", keep_geom_type=True)
    missing = missing[missing.area >= 1.0]
    buildings.to_file(out / "peer.gpkg", layer="buildings")
    missing.to_file(out / "peer.gpkg", layer="missing")
    print(json.dumps({"statuses": buildings["status"].value_counts().to_dict(), "missing": len(missing),
                      "predicted": len(pred)}))


def measure(command: list[str]) -> tuple[float, float, str, float]:
    """Wall seconds, peak RSS (GiB), stdout and CPU seconds (user + system) of `command` run in a fresh process.

    The process is started by /usr/bin/time, whose own figures are read: a child forked straight from this
    (large, torch-importing) process would report this process's resident size as its peak.
    """
    proc = subprocess.run(["/usr/bin/time", "-f", "bench-time %e %U %S %M", *command], capture_output=True,
                          text=True, cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)})
    if proc.returncode != 0:
        raise SystemExit(f"{command} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    line = next(x for x in reversed(proc.stderr.splitlines()) if x.startswith("bench-time "))
    wall, user, system, peak_kib = (float(v) for v in line.split()[1:])
    return wall, peak_kib / 2**20, proc.stdout, user + system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buildings", type=int, default=100_000)
    parser.add_argument("--variants", type=int, default=8)
    parser.add_argument("--peer", nargs=3, type=Path, metavar=("MASK", "OSM", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer:
        peer(*args.peer)
        return
    mask, osm, n = build_inputs(args.buildings, args.variants)
    with rasterio.open(mask) as src:
        size = f"{src.width:,} x {src.height:,} px ({src.width * src.height / 1e9:.2f} Gpx)"
    ours_dir, peer_dir = FOLDER / "landsight", FOLDER / "peer"
    peer_dir.mkdir(exist_ok=True)
    cli = [sys.executable, "-c", "from landsight.cli.main import cli; cli()"]
    ours = measure([*cli, "-q", "compare", str(mask), str(osm), "-o", str(ours_dir), "--overwrite"])
    theirs = measure([sys.executable, "-m", "bench.compare_city", "--peer", str(mask), str(osm), str(peer_dir)])
    counts = json.loads((ours_dir / "summary.json").read_text())["features"]
    statuses = ", ".join(f"{s} {counts[s]['count']:,}" for s in counts)
    load = os.getloadavg()[0]
    command = "python -m bench.compare_city " + " ".join(sys.argv[1:])

    def row(run: tuple[float, float, str, float]) -> str:
        return f"{run[0]:.1f} | {run[3]:.1f} | {run[1]:.2f}"

    text = f"""
`{command.strip()}`; machine: {machine()}; 1-min load average at the end {load:.1f}.
{n:,} buildings on a {size} 0.5 m building mask (see the bench's docstring). One run each, in fresh processes.

| side | wall s | CPU s | peak RSS (GiB) | result |
| --- | ---: | ---: | ---: | --- |
| `landsight compare` (tiles + features + layers + review map) | {row(ours)} | {statuses} |
| peer: shapes + geopandas sjoin/overlay (features only) | {row(theirs)} | {theirs[2].strip()} |

Speed ratio peer / landsight: **{theirs[0] / ours[0]:.2f}x** in wall time, {theirs[3] / ours[3]:.2f}x in CPU time.
Targets: under 120 s ({ours[0] < 120}), under 2 GiB ({ours[1] < 2}), faster than the peer ({ours[0] < theirs[0]}).
"""
    print(text)
    replace_section(ROOT / "BENCHMARKS.md", "Compare at city scale (issue 14)", text)


if __name__ == "__main__":
    main()
