"""The map page in a real headless Chromium: imagery and predicted tiles load, no console error, nothing fetched
from outside localhost, with and without a bearer token."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest

from landsight.serve import ServeConfig, create_app
from tests.browser import browser_page, playwright_or_skip
from tests.serve.conftest import SAMPLE, TOKEN, running


@pytest.fixture(scope="module")
def sync_playwright():
    return playwright_or_skip()


def _page(sync_playwright):
    # the first predicted tile runs the model (slow on a busy CPU)
    return browser_page(sync_playwright, timeout_ms=180_000, launch_timeout_ms=30_000,
                        viewport={"width": 1024, "height": 768})


def _outside(requests: list[str]) -> list[str]:
    return [u for u in requests if urlparse(u).scheme not in ("data", "blob") and urlparse(u).hostname != "127.0.0.1"]


def _check_tiles(page) -> None:
    page.wait_for_selector("body[data-ready=true]")
    control = page.inner_text(".leaflet-control-layers")
    assert "imagery: atlanta" in control and "buildings on atlanta" in control, control
    layers = page.eval_on_selector_all(".leaflet-tile-container", "cs => cs.map(c => c.querySelectorAll("
                                       "'img.leaflet-tile-loaded').length)")
    assert len([n for n in layers if n > 0]) >= 2, layers  # imagery and prediction both drew tiles
    sizes = page.eval_on_selector_all("img.leaflet-tile-loaded", "ims => ims.map(i => i.naturalWidth)")
    assert sizes and set(sizes) == {256}


def test_map_page_shows_imagery_and_predicted_tiles(sync_playwright, quick_model, tmp_path):
    config = ServeConfig({"buildings": str(quick_model)}, {"atlanta": str(SAMPLE / "atlanta.tif")})
    with running(create_app(config)) as base, _page(sync_playwright) as (page, errors, requests):
        page.goto(f"{base}/")
        _check_tiles(page)
        page.screenshot(path=str(tmp_path / "map.png"))
    assert not errors, errors
    assert not _outside(requests), _outside(requests)
    assert any("/v1/models/buildings/tiles/" in u for u in requests)
    assert (tmp_path / "map.png").stat().st_size > 20_000


def test_map_page_asks_for_the_token(sync_playwright, quick_model):
    config = ServeConfig({"buildings": str(quick_model)}, {"atlanta": str(SAMPLE / "atlanta.tif")}, token=TOKEN)
    with running(create_app(config)) as base, _page(sync_playwright) as (page, errors, requests):
        page.goto(f"{base}/")
        page.wait_for_selector("#token-form:not([hidden])")
        page.fill("#token", TOKEN)
        page.click("#token-form button")
        _check_tiles(page)
    assert all("401" in e for e in errors), errors  # only the first, unauthenticated metadata request
    assert not _outside(requests), _outside(requests)
