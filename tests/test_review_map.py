"""The review page in a real headless Chromium: offline, layers shown, keyboard walk, marks exported as GeoJSON."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import rasterio
import shapely
from shapely import affinity

from landsight.change import detect_change
from landsight.compare import TileGrid, compare_prediction
from landsight.labels.classes import ClassTable
from landsight.labels.rasterize import rasterize_labels
from tests.browser import browser_page, playwright_or_skip

SAMPLE = Path(__file__).parent.parent / "landsight" / "sample_data"
LAYERS = ["imagery", "agreement (confirmed)", "shifted", "unsupported: open data only", "missing: imagery only"]


@pytest.fixture(scope="module")
def sync_playwright():
    return playwright_or_skip()


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A compare report of Atlanta's OSM buildings (rasterized) against OSM with one dropped, one shifted 5 m and
    one fake building: three worst tiles at zoom 19."""
    tmp = tmp_path_factory.mktemp("review")
    rasterize_labels(SAMPLE / "atlanta.tif", SAMPLE / "atlanta-buildings.geojson", tmp / "mask.tif",
                     ClassTable.from_names(["building"], background=True))
    data = json.loads((SAMPLE / "atlanta-buildings.geojson").read_text())
    features = [f for f in data["features"] if f["properties"]["osm_id"] != 102924]
    for f in features:
        if f["properties"]["osm_id"] == 102919:
            f["geometry"] = shapely.geometry.mapping(affinity.translate(shapely.geometry.shape(f["geometry"]), 5, 0))
    fake = shapely.box(733740, 3724800, 733752, 3724812)
    features.append({"type": "Feature", "properties": {"osm_id": -1, "building": "yes"},
                     "geometry": shapely.geometry.mapping(fake)})
    (tmp / "edited.geojson").write_text(json.dumps({**data, "features": features}))
    compare_prediction(tmp / "mask.tif", tmp / "edited.geojson", tmp / "report", image=SAMPLE / "atlanta.tif",
                       grid=TileGrid("xyz", 19))
    return tmp / "report"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """A static HTTP server on 127.0.0.1 (random port) for the duration of the block."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _page(sync_playwright):
    return browser_page(sync_playwright, viewport={"width": 1280, "height": 800}, accept_downloads=True)


def _worst_bounds(report: Path) -> list[tuple[str, shapely.Geometry]]:
    summary = json.loads((report / "summary.json").read_text())
    tiles = json.loads((report / "layers" / "tiles.geojson").read_text())["features"]
    shapes = {f["properties"]["id"]: shapely.geometry.shape(f["geometry"]) for f in tiles}
    return [(t["id"], shapes[t["id"]]) for t in summary["tiles"]["worst"]]


def _current(page) -> tuple[int, tuple[float, float]]:
    index = int(page.get_attribute("#items li.current", "data-index"))
    center = page.evaluate("(() => { const c = window.landsightReview.map.getCenter(); return [c.lng, c.lat]; })()")
    return index, tuple(center)


def test_review_page_over_http(sync_playwright, report, tmp_path):
    worst = _worst_bounds(report)
    assert len(worst) >= 2
    with serve(report) as base, _page(sync_playwright) as (page, errors, requests):
        page.goto(f"{base}/review.html")
        page.wait_for_selector("body[data-ready=true]")
        control = page.inner_text(".leaflet-control-layers")
        assert all(name in control for name in LAYERS), control
        strokes = page.eval_on_selector_all(".leaflet-overlay-pane path", "ps => ps.map(p => p.getAttribute('stroke'))")
        assert {"#8c8c8c", "#ff4fa3", "#2ca02c", "#ff8c00"} <= set(strokes)  # grey, pink, green, orange
        assert page.eval_on_selector("img.leaflet-image-layer", "img => img.complete && img.naturalWidth > 0")
        assert page.locator("#items li").count() == len(worst)

        page.keyboard.press("n")
        index, center = _current(page)
        assert index == 0 and worst[0][1].contains(shapely.Point(center))
        page.keyboard.press("r")
        page.keyboard.press("j")
        index, center = _current(page)
        assert index == 1 and worst[1][1].contains(shapely.Point(center))
        page.keyboard.press("i")
        page.keyboard.press("p")
        assert _current(page)[0] == 0
        assert "reviewed" in page.get_attribute("#items li[data-index='0']", "class")
        assert "ignore" in page.get_attribute("#items li[data-index='1']", "class")
        page.screenshot(path=str(tmp_path / "review.png"))

        with page.expect_download() as download:
            page.keyboard.press("e")
        marks = json.loads(Path(download.value.path()).read_text())
    assert marks["type"] == "FeatureCollection"
    assert {f["properties"]["id"]: f["properties"]["mark"] for f in marks["features"]} == {
        worst[0][0]: "reviewed", worst[1][0]: "ignore"}
    assert all(f["geometry"]["type"] == "Polygon" and f["properties"]["marked_utc"] for f in marks["features"])
    assert not errors, errors
    outside = [u for u in requests if urlparse(u).scheme not in ("data", "blob")
               and urlparse(u).hostname != "127.0.0.1"]
    assert not outside, outside
    assert (tmp_path / "review.png").stat().st_size > 20_000


def test_review_page_from_file_url(sync_playwright, report):
    with _page(sync_playwright) as (page, errors, requests):
        page.goto((report / "review.html").as_uri())
        page.wait_for_selector("body[data-ready=true]")
        page.keyboard.press("n")
        assert _current(page)[0] == 0
        assert page.locator(".leaflet-overlay-pane path").count() > 30
    assert not errors, errors
    assert all(urlparse(u).scheme in ("file", "data", "blob") for u in requests), requests


def test_change_review_page(sync_playwright, tmp_path):
    before = Path(__file__).parent / "data" / "rgbn-time-series" / "rgbn_20160101.tif"
    with rasterio.open(before) as src:
        profile, data = src.profile, src.read()
    data[:, 150:162, 440:452] = data[:, 73:85, 305:317]  # river gravel over forest
    with rasterio.open(tmp_path / "after.tif", "w", **profile) as dst:
        dst.write(data)
    detect_change(before, tmp_path / "after.tif", tmp_path / "report")
    with _page(sync_playwright) as (page, errors, requests):
        page.goto((tmp_path / "report" / "review.html").as_uri())
        page.wait_for_selector("body[data-ready=true]")
        control = page.inner_text(".leaflet-control-layers")
        assert all(name in control for name in ("before image", "after image", "brighter")), control
        page.keyboard.press("n")
        assert _current(page)[0] == 0 and page.locator("#items li").count() == 1
        page.screenshot(path=str(tmp_path / "change-review.png"))
    assert not errors, errors
    assert all(urlparse(u).scheme in ("file", "data", "blob") for u in requests), requests
