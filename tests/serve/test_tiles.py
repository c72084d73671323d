"""Seamless XYZ tiles: a 4x4 block of served tiles, stitched, against `landsight predict` on the same area."""

from __future__ import annotations

import io

import httpx
import mercantile
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.enums import Resampling
from rasterio.transform import from_bounds
from rasterio.warp import reproject, transform_bounds

from landsight.serve import ServeConfig, create_app
from tests.serve.conftest import SAMPLE, run, running

Z = 19
"""0.25 m web-mercator pixels over Atlanta's 0.5 m image: a 4 x 4 block (254 m) fits across it."""


@pytest.fixture(scope="module")
def server(quick_model):
    config = ServeConfig({"buildings": str(quick_model)}, {"atlanta": str(SAMPLE / "atlanta.tif")}, tile_cache=64)
    with running(create_app(config)) as base:
        yield base


def _block_origin() -> tuple[int, int]:
    with rasterio.open(SAMPLE / "atlanta.tif") as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    inside = [t for t in mercantile.tiles(west, south, east, north, [Z])
              if west <= mercantile.bounds(t).west and mercantile.bounds(t).east <= east
              and south <= mercantile.bounds(t).south and mercantile.bounds(t).north <= north]
    return min(t.x for t in inside), min(t.y for t in inside)


def _stitch(base: str, x0: int, y0: int) -> np.ndarray:
    block = np.zeros((1024, 1024), dtype=np.uint8)
    with httpx.Client(timeout=300) as client:
        for j in range(4):
            for i in range(4):
                answer = client.get(f"{base}/v1/models/buildings/tiles/{Z}/{x0 + i}/{y0 + j}.png",
                                    params={"source": "atlanta"})
                assert answer.status_code == 200 and answer.headers["content-type"] == "image/png", answer.text
                block[256 * j:256 * (j + 1), 256 * i:256 * (i + 1)] = np.asarray(Image.open(io.BytesIO(answer.content)))
    return block


def _predict_on_block(model, x0: int, y0: int, tmp_path, *args: str) -> np.ndarray:
    """`landsight predict` over the whole image, resampled (nearest) onto the block's web-mercator grid."""
    out = tmp_path / f"predict{len(args)}.tif"
    assert run("predict", model, SAMPLE / "atlanta.tif", "-o", out, *args).exit_code == 0
    top_left, bottom_right = mercantile.xy_bounds(x0, y0, Z), mercantile.xy_bounds(x0 + 3, y0 + 3, Z)
    grid = from_bounds(top_left.left, bottom_right.bottom, bottom_right.right, top_left.top, 1024, 1024)
    block = np.full((1024, 1024), 255, dtype=np.uint8)
    with rasterio.open(out) as src:
        reproject(src.read(1), block, src_transform=src.transform, src_crs=src.crs, src_nodata=255,
                  dst_transform=grid, dst_crs="EPSG:3857", dst_nodata=255, resampling=Resampling.nearest,
                  tolerance=0)
    return block


def _tile_borders(halo: int = 4) -> np.ndarray:
    border = np.zeros((1024, 1024), dtype=bool)
    for k in (256, 512, 768):
        border[k - halo:k + halo, :] = True
        border[:, k - halo:k + halo] = True
    return border


def test_stitched_tiles_match_predict_without_seams(server, quick_model, tmp_path):
    """IoU >= 0.99 per class and disagreements no denser within 4 px of tile borders than elsewhere.

    Tiles crop one blended prediction on `predict`'s window grid, so what differs is where a source pixel edge
    falls exactly on a tile pixel centre (rounding in the two resamplings), about 1 pixel in 10,000; a seam
    would show as a dense line of disagreement along tile borders.
    """
    x0, y0 = _block_origin()
    stitched = _stitch(server, x0, y0)
    expected = _predict_on_block(quick_model, x0, y0, tmp_path)
    assert (expected != 255).mean() > 0.9 and 0.01 < (expected == 1).mean() < 0.99  # over the image, both classes
    for value in (0, 1):
        inter = ((stitched == value) & (expected == value)).sum()
        union = ((stitched == value) | (expected == value)).sum()
        assert inter / union >= 0.99, (value, inter / union)
    differ = stitched != expected
    border = _tile_borders()
    assert differ.mean() < 0.001, differ.mean()
    assert differ[border].mean() <= differ[~border].mean() + 0.001, (differ[border].mean(), differ[~border].mean())


def test_tiles_are_cached_sources_listed_and_imagery_served(server):
    x0, y0 = _block_origin()
    url = f"{server}/v1/models/buildings/tiles/{Z}/{x0}/{y0}.png"
    first = httpx.get(url, params={"source": "atlanta"}, timeout=300)
    hits = _cache_hits(server)
    second = httpx.get(url, params={"source": "atlanta"}, timeout=60)
    assert first.content == second.content and _cache_hits(server) == hits + 1
    sources = httpx.get(f"{server}/v1/sources").json()
    assert sources[0]["name"] == "atlanta" and sources[0]["min_zoom"] <= Z <= sources[0]["max_zoom"]
    west, south, east, north = sources[0]["bounds"]
    assert west < -84.48 < east and south < 33.638 < north
    imagery = Image.open(io.BytesIO(httpx.get(f"{server}/v1/sources/atlanta/tiles/{Z}/{x0 + 1}/{y0 + 1}.png").content))
    pixels = np.asarray(imagery)
    assert imagery.mode == "RGBA" and pixels[..., 3].min() == 255 and pixels[..., 0].std() > 10
    outside = httpx.get(f"{server}/v1/models/buildings/tiles/{Z}/0/0.png", params={"source": "atlanta"})
    assert outside.status_code == 200 and np.asarray(Image.open(io.BytesIO(outside.content)))[..., 3].max() == 0


def _cache_hits(base: str) -> float:
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        if line.startswith('landsight_tile_cache_total{result="hit"}'):
            return float(line.split()[-1])
    return 0.0
