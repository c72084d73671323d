"""Bad requests get the right 4xx with a JSON error and the server keeps serving; a full queue answers 503."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from landsight.models.model_file import load_model_file
from landsight.serve import Batching, Limits, ServeConfig, create_app
from landsight.serve.models import ServedModel
from tests.serve.conftest import SAMPLE, TOKEN, running

AUTH = {"Authorization": f"Bearer {TOKEN}"}
TIFF = {**AUTH, "Content-Type": "image/tiff"}


@pytest.fixture(scope="module")
def server(quick_model):
    config = ServeConfig({"buildings": str(quick_model)}, {"atlanta": str(SAMPLE / "atlanta.tif")}, token=TOKEN,
                         limits=Limits(max_body_bytes=1024 * 1024, max_pixels=1024 * 1024))
    with running(create_app(config)) as base:
        yield base


@pytest.fixture(scope="module")
def bodies(tmp_path_factory, crop):
    """Bad bodies: truncated GeoTIFF, wrong band count, a 50,000 x 50,000 header (sparse file, 0.3 MB)."""
    tmp = tmp_path_factory.mktemp("bad")
    bomb = tmp / "bomb.tif"
    with rasterio.open(bomb, "w", driver="GTiff", width=50_000, height=50_000, count=1, dtype="uint8",
                       crs="EPSG:32616", transform=from_origin(733_000, 3_725_000, 0.5, 0.5), tiled=True,
                       compress="deflate", SPARSE_OK=True):
        pass
    rgbn = SAMPLE.parent.parent / "tests" / "data" / "rgbn-time-series" / "rgbn_20160101.tif"
    data = crop.read_bytes()
    return {"truncated": data[:3000], "bands": rgbn.read_bytes(), "bomb": bomb.read_bytes(), "good": data}


PREDICT = "/v1/models/buildings/predict"
TILE = "/v1/models/buildings/tiles/{}.png?source=atlanta"
CASES = [
    ("truncated GeoTIFF", "POST", PREDICT, TIFF, "truncated", 422, "truncated"),
    ("wrong band count", "POST", PREDICT, TIFF, "bands", 422, "1 band"),
    ("pixel bomb", "POST", PREDICT, TIFF, "bomb", 413, "2,500,000,000 pixels"),
    ("wrong content type", "POST", PREDICT, {**AUTH, "Content-Type": "text/plain"}, "good", 415, "image/tiff"),
    ("no content type", "POST", PREDICT, AUTH, "good", 415, "Content-Type"),
    ("missing token", "POST", PREDICT, {"Content-Type": "image/tiff"}, "good", 401, "bearer token"),
    ("wrong token", "GET", "/v1/models", {"Authorization": "Bearer " + "x" * len(TOKEN)}, None, 401, "bearer"),
    ("oversize body", "POST", PREDICT, TIFF, "oversize", 413, "1,048,576 bytes"),
    ("unknown model", "POST", "/v1/models/nope/predict", TIFF, "good", 404, "unknown model 'nope'"),
    ("unknown model metadata", "GET", "/v1/models/nope", AUTH, None, 404, "['buildings']"),
    ("x out of range", "GET", TILE.format("3/9/1"), AUTH, None, 404, "0..7"),
    ("y out of range", "GET", TILE.format("19/0/524288"), AUTH, None, 404, "does not exist"),
    ("z out of range", "GET", TILE.format("25/0/0"), AUTH, None, 404, "z must be in 0..24"),
    ("negative z", "GET", TILE.format("-1/0/0"), AUTH, None, 404, "does not exist"),
    ("z not a number", "GET", TILE.format("a/0/0"), AUTH, None, 422, "int"),
    ("unknown source", "GET", "/v1/models/buildings/tiles/18/0/0.png?source=etc", AUTH, None, 404, "atlanta"),
    ("unknown format", "POST", PREDICT + "?format=jpeg", TIFF, "good", 406, "tiff, png"),
]


@pytest.mark.parametrize(("case", "method", "path", "headers", "body", "status", "says"), CASES,
                         ids=[c[0] for c in CASES])
def test_bad_request_gets_json_4xx(server, bodies, case, method, path, headers, body, status, says):
    content = np.random.default_rng(0).bytes(1536 * 1024) if body == "oversize" else bodies.get(body)
    answer = httpx.request(method, server + path, content=content, headers=headers, timeout=60)
    assert answer.status_code == status, answer.text
    error = answer.json()
    assert error["status"] == status and says in error["detail"], error
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server}/healthz").status_code == 200


def test_streamed_oversize_body_and_still_serving(server, bodies):
    def chunks():
        for _ in range(24):
            yield b"\0" * 65536

    answer = httpx.post(server + PREDICT, content=chunks(), headers=TIFF, timeout=60)
    assert answer.status_code == 413 and "at most 1,048,576 bytes" in answer.json()["detail"]
    good = httpx.post(server + PREDICT, content=bodies["good"], headers=TIFF, timeout=60)
    assert good.status_code == 200 and good.headers["content-type"] == "image/tiff"
    assert httpx.get(f"{server}/healthz", timeout=5).json() == {"status": "ok"}


def _slow_model(quick_model, seconds):
    model_file = load_model_file(quick_model)
    model_file.state_dict = {}

    def infer(batch):
        time.sleep(seconds)
        probs = np.zeros((batch.shape[0], 2, *batch.shape[2:]), dtype=np.float32)
        probs[:, 0] = 1
        return probs

    return {"slow": ServedModel("slow", model_file, "torch", infer)}


def test_full_queue_answers_503_with_retry_after(quick_model, bodies):
    config = ServeConfig({"slow": str(quick_model)}, batching=Batching(max_batch=1, max_wait_ms=0, max_queue=1))
    with running(create_app(config, _slow_model(quick_model, 0.5))) as base:
        async def post_all():
            async with httpx.AsyncClient(timeout=60) as client:
                return await asyncio.gather(*(client.post(f"{base}/v1/models/slow/predict", content=bodies["good"],
                                                          headers={"Content-Type": "image/tiff"})
                                              for _ in range(6)))

        answers = asyncio.run(post_all())
        codes = sorted(a.status_code for a in answers)
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}, codes
        refused = next(a for a in answers if a.status_code == 503)
        assert refused.headers["retry-after"] == "1" and "queue is full" in refused.json()["detail"]
        again = httpx.post(f"{base}/v1/models/slow/predict", content=bodies["good"],
                           headers={"Content-Type": "image/tiff"}, timeout=60)
        assert again.status_code == 200


def test_slow_request_times_out_with_504(quick_model, bodies):
    config = ServeConfig({"slow": str(quick_model)}, limits=Limits(timeout_s=0.3))
    with running(create_app(config, _slow_model(quick_model, 1.0))) as base:
        answer = httpx.post(f"{base}/v1/models/slow/predict", content=bodies["good"],
                            headers={"Content-Type": "image/tiff"}, timeout=60)
        assert answer.status_code == 504 and "longer than 0.3 s" in answer.json()["detail"]
        assert httpx.get(f"{base}/healthz").status_code == 200
