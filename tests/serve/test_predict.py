"""`landsight serve` predictions over real HTTP (httpx and curl) against `landsight predict`, pixel for pixel."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import subprocess
import warnings

import httpx
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning
from rasterio.windows import Window

from landsight.predict import predict_raster
from landsight.predict.predictor import Predictor
from landsight.provenance import file_digest
from landsight.serve import Batching, Limits, ServeConfig, create_app
from tests.serve.conftest import SAMPLE, TOKEN, read_tif, run, running, write_crop

AUTH = {"Authorization": f"Bearer {TOKEN}"}
WINDOW = ["--window", "256", "--overlap", "64"]


@pytest.fixture(scope="module")
def server(quick_model):
    config = ServeConfig({"buildings": str(quick_model)}, token=TOKEN, window=256, overlap=64,
                         limits=Limits(max_body_bytes=2 * 1024 * 1024), batching=Batching(8, 20.0, 64))
    with running(create_app(config)) as base:
        yield base


def predicted(model, image, tmp_path, *args):
    out = tmp_path / f"ref-{len(list(tmp_path.iterdir()))}.tif"
    result = run("predict", model, image, "-o", out, *WINDOW, *args)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as src:
        return src.read(), src.profile


def test_geotiff_answer_equals_predict(server, quick_model, crop, tmp_path):
    answer = httpx.post(f"{server}/v1/models/buildings/predict", content=crop.read_bytes(),
                        headers={**AUTH, "Content-Type": "image/tiff"}, timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/tiff"
    served, profile = read_tif(answer.content, tmp_path / "served.tif")
    expected, ref_profile = predicted(quick_model, crop, tmp_path)
    assert np.array_equal(served, expected)
    assert (profile["crs"], profile["transform"], profile["nodata"]) == (
        ref_profile["crs"], ref_profile["transform"], ref_profile["nodata"])
    with rasterio.open(tmp_path / "served.tif") as src:
        assert src.tags()["model_sha256"] == file_digest(quick_model)
    assert 0 < (served == 1).mean() < 1  # both classes present: the comparison means something


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_multi_window_image_equals_predict(server, quick_model, tmp_path):
    """The whole 600 x 900 sample: 15 windows of 256 px, batched three at a time, blended as predict blends."""
    out = tmp_path / "curl.tif"
    cmd = ["curl", "-sS", "--fail-with-body", "-o", str(out), "-H", f"Authorization: Bearer {TOKEN}",
           "-H", "Content-Type: image/tiff", "--data-binary", f"@{SAMPLE / 'atlanta.tif'}",
           f"{server}/v1/models/buildings/predict"]
    subprocess.run(cmd, check=True, timeout=120)
    expected, _ = predicted(quick_model, SAMPLE / "atlanta.tif", tmp_path)
    with rasterio.open(out) as src:
        assert np.array_equal(src.read(), expected)


def test_png_probabilities_and_polygons(server, quick_model, crop, tmp_path):
    headers = {**AUTH, "Content-Type": "image/tiff"}
    url = f"{server}/v1/models/buildings/predict"
    expected, _ = predicted(quick_model, crop, tmp_path)
    png = httpx.post(url, content=crop.read_bytes(), headers={**headers, "Accept": "image/png"}, timeout=60)
    assert png.headers["content-type"] == "image/png"
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.content))), expected[0])
    probs = httpx.post(url, params={"format": "probabilities"}, content=crop.read_bytes(), headers=headers,
                       timeout=60)
    served, _ = read_tif(probs.content, tmp_path / "probs.tif")
    assert np.array_equal(served, predicted(quick_model, crop, tmp_path, "--probabilities")[0])
    geo = httpx.post(url, content=crop.read_bytes(), headers={**headers, "Accept": "application/geo+json"},
                     timeout=60).json()
    assert geo["type"] == "FeatureCollection" and geo["features"]
    lon, lat = geo["features"][0]["geometry"]["coordinates"][0][0]
    assert -84.49 < lon < -84.47 and 33.63 < lat < 33.65  # WGS84, over Atlanta
    assert {f["properties"]["class"] for f in geo["features"]} == {"building"}


def test_png_body_without_georeferencing(server, quick_model, crop, tmp_path):
    with rasterio.open(crop) as src:
        pixels = src.read(1)
    scaled = (pixels.astype(np.float64) / max(1, pixels.max()) * 255).astype(np.uint8)
    with warnings.catch_warnings(), rasterio.MemoryFile() as mem:
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with mem.open(driver="PNG", width=256, height=256, count=1, dtype="uint8") as dst:
            dst.write(scaled, 1)
        body = mem.read()
    answer = httpx.post(f"{server}/v1/models/buildings/predict", content=body,
                        headers={**AUTH, "Content-Type": "image/png"}, timeout=60)
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
    polygons = httpx.post(f"{server}/v1/models/buildings/predict", params={"format": "geojson"}, content=body,
                          headers={**AUTH, "Content-Type": "image/png"}, timeout=60)
    assert polygons.status_code == 406 and "georeferencing" in polygons.json()["detail"]


def test_concurrent_requests_share_forward_passes(server, quick_model, tmp_path):
    """Eight different crops at once: answered correctly (each its own) with batches of more than one window."""
    crops = [write_crop(SAMPLE / "atlanta.tif", tmp_path / f"c{i}.tif", Window(32 * i, 64 * i, 256, 256))
             for i in range(8)]

    async def post_all():
        async with httpx.AsyncClient(timeout=120, headers={**AUTH, "Content-Type": "image/tiff"}) as client:
            return await asyncio.gather(*(client.post(f"{server}/v1/models/buildings/predict",
                                                      content=c.read_bytes()) for c in crops))

    before = _batches(server)
    answers = asyncio.run(post_all())
    after = _batches(server)
    assert [a.status_code for a in answers] == [200] * 8
    assert after["sum"] - before["sum"] == 8 and after["count"] - before["count"] < 8
    predictor = Predictor.load(quick_model, "cpu")  # one load for the eight references
    for i, (answer, c) in enumerate(zip(answers, crops, strict=True)):
        served, _ = read_tif(answer.content, tmp_path / f"s{i}.tif")
        predict_raster(predictor, c, tmp_path / f"r{i}.tif", window=256, overlap=64)
        with rasterio.open(tmp_path / f"r{i}.tif") as ref:
            assert (served == ref.read()).mean() > 0.999  # float sums may differ by batch; see BENCHMARKS.md


def _batches(base):
    text = httpx.get(f"{base}/metrics").text
    values = {}
    for line in text.splitlines():
        for part in ("sum", "count"):
            if line.startswith(f"landsight_batch_size_{part}{{"):
                values[part] = float(line.split()[-1])
    return values


def test_metadata_health_metrics_openapi(server, quick_model):
    models = httpx.get(f"{server}/v1/models", headers=AUTH).json()
    assert [m["name"] for m in models] == ["buildings"]
    meta = httpx.get(f"{server}/v1/models/buildings", headers=AUTH).json()
    assert meta["sha256"] == file_digest(quick_model) and meta["task"] == "segmentation"
    assert meta["bands"]["count"] == 1 if "count" in meta["bands"] else len(meta["bands"]["indexes"]) == 1
    assert [c["name"] for c in meta["classes"]] == ["background", "building"]
    assert len(meta["normalization"]["mean"]) == 1 and "per_class" in meta["metrics"]
    assert "state_dict" not in json.dumps(meta)
    assert httpx.get(f"{server}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{server}/readyz").json()["status"] == "ready"
    metrics = httpx.get(f"{server}/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for name in ("landsight_requests_total", "landsight_request_seconds_bucket", "landsight_batch_size_bucket",
                 "landsight_queue_depth"):
        assert name in metrics.text, name
    paths = httpx.get(f"{server}/openapi.json").json()["paths"]
    for route in ("/healthz", "/readyz", "/metrics", "/", "/v1/models", "/v1/models/{name}",
                  "/v1/models/{name}/predict", "/v1/models/{name}/tiles/{z}/{x}/{y}.png", "/v1/sources",
                  "/v1/sources/{source}/tiles/{z}/{x}/{y}.png"):
        assert route in paths, route
    body = paths["/v1/models/{name}/predict"]["post"]["requestBody"]["content"]
    assert {"image/tiff", "image/png", "image/jpeg"} <= set(body)
