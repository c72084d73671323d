"""`landsight download` against the fault-injecting tile/WMS server on 127.0.0.1 (tests/servers.py)."""

import json
import socket
import time
from collections import Counter
from urllib.parse import urlsplit

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS

pytest.importorskip("httpx")
pytest.importorskip("tenacity")

from landsight.acquire.cover import cell_bounds, cell_id
from landsight.acquire.coverfile import read_cover
from landsight.acquire.sources import XyzSource
from landsight.report.schema import read_report
from tests.acquire.conftest import untrained_model
from tests.servers import running

# A part of the Sentinel-2 crop: 320 tiles at zoom 18.
BBOX = "-75.640,37.680,-75.615,37.697"
KIND = {"500": "http-500", "503": "http-503", "429": "http-429", "timeout": "timeout", "reset": "connection",
        "truncated": "truncated", "cut": "truncated", "xml": "service-exception", "html": "html",
        "content-type": "content-type", "wrong-size": "size", "empty": "empty"}
RECOVERED = ["slow", "500", "503", "429", "truncated", "cut", "reset", "timeout", "empty"]  # once: the retry succeeds
EXHAUSTED = ["503", "truncated", "timeout"]  # on every attempt of the first run (3 with --retries 2)
PERMANENT = ["xml", "html", "content-type", "wrong-size"]  # not retried


@pytest.fixture
def server():
    with running(seconds=120) as srv:
        yield srv


def _key(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _max_in_window(times, width=1.0):
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_download_under_faults_reports_each_then_resumes_byte_identical(invoke, server, tmp_path):
    assert invoke("cover", "--bbox", BBOX, "--zoom", "18", "-o", tmp_path / "cover").exit_code == 0
    cells, _ = read_cover(tmp_path / "cover.csv")
    assert len(cells) >= 300
    template = server.url + "/xyz/{z}/{x}/{y}.png?api_key=SECRET123"
    source = XyzSource(template)
    plan, expected_failed = {}, {}
    for i, fault in enumerate(RECOVERED):
        plan[cells[3 + 7 * i]] = [fault]
    for i, fault in enumerate(EXHAUSTED):
        plan[cells[100 + 7 * i]] = [fault] * 3
        expected_failed[cell_id(cells[100 + 7 * i])] = KIND[fault]
    for i, fault in enumerate(PERMANENT):
        plan[cells[200 + 7 * i]] = [fault]
        expected_failed[cell_id(cells[200 + 7 * i])] = KIND[fault]
    server.faults.update({_key(source.url(c)): list(f) for c, f in plan.items()})
    out = tmp_path / "tiles"
    args = ["download", "--xyz", template, "--cover", tmp_path / "cover.csv", "-o", out, "--format", "png",
            "--rate", "100", "--timeout", "4", "--retries", "2", "--concurrency", "8"]

    started = time.monotonic()
    first = invoke(*args)
    first_s = time.monotonic() - started
    assert first.exit_code == 1, first.output
    report = read_report(out / "download-report.json", "download")
    assert "SECRET123" not in json.dumps(report) and "api_key=***" in report["failed"][0]["url"]
    assert {f["tile"]: f["kind"] for f in report["failed"]} == expected_failed
    exhausted = {cell_id(cells[100 + 7 * i]) for i in range(len(EXHAUSTED))}
    assert all(f["attempts"] == (3 if f["tile"] in exhausted else 1) for f in report["failed"])
    injected = Counter((_tile_of(e.target, cells, source), KIND[e.fault]) for e in server.log
                       if e.fault not in (None, "slow"))
    reported = Counter((f["tile"], f["kind"]) for f in report["faults"])
    assert reported == injected and sum(injected.values()) == 9 - 1 + 9 + 4  # every fault, by tile and reason
    for tile in expected_failed:
        assert not list(out.glob(f"{tile}.*"))  # a failure never lands as a tile
    assert not list(out.rglob("*.part*"))
    first_run = [e.at for e in server.log]
    busy = [e.at for e in server.log if e.target == _key(source.url(cells[3 + 7 * RECOVERED.index("429")]))]
    assert len(busy) == 2 and busy[1] - busy[0] >= 0.95  # Retry-After: 1 honoured
    assert _max_in_window(first_run) <= 100 + 1
    assert report["request_rate"] <= 100
    print(f"first run: {len(first_run)} requests in {first_s:.1f} s, {report['request_rate']} req/s "
          f"(--rate 100), at most {_max_in_window(first_run)} in any second; {len(report['faults'])} faults reported")

    server.log.clear()
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert len(server.log) == len(expected_failed)  # only the missing tiles are fetched
    for cell in cells:
        path = out / str(cell.z) / str(cell.x) / f"{cell.y}.png"
        assert path.read_bytes() == server.renderer.xyz(cell.z, cell.x, cell.y), cell
    with rasterio.open(path) as src:  # georeferenced by its world file and .aux.xml
        assert src.crs == CRS.from_epsg(3857)
        assert np.allclose(src.bounds, cell_bounds(cell)[1], atol=1e-6)


def _tile_of(target, cells, source):
    by_key = {_key(source.url(c)): cell_id(c) for c in cells}
    return by_key[target]


@pytest.mark.parametrize("version", ["1.1.1", "1.3.0"])
def test_wms_geotiff_tiles_in_epsg4326_match_the_server(invoke, server, tmp_path, version):
    assert invoke("cover", "--bbox", "-75.64,37.68,-75.62,37.695", "--grid-crs", "4326", "--grid-size", "0.005",
                  "-o", tmp_path / "grid").exit_code == 0
    out = tmp_path / "wms"
    result = invoke("download", "--wms", server.url + "/wms", "--layers", "s2", "--wms-version", version,
                    "--cover", tmp_path / "grid.csv", "-o", out, "--tile-size", "64", "--mosaic", tmp_path / "m.tif")
    assert result.exit_code == 0, result.output
    cells, _ = read_cover(tmp_path / "grid.csv")
    assert len(cells) == 12  # 4 columns x 3 rows of 0.005 degrees
    for cell in cells:
        with rasterio.open(out / "4326-0.005" / str(cell.x) / f"{cell.y}.tif") as src:
            assert src.crs == CRS.from_epsg(4326)
            assert np.allclose(src.bounds, cell.bounds, atol=1e-9)
            expected = server.renderer.pixels(CRS.from_epsg(4326), cell.bounds, 64, 64)
            assert np.array_equal(src.read(), expected)  # axis order right: the image is where it belongs
            assert expected.any()
    with rasterio.open(tmp_path / "m.tif") as src:
        assert src.crs == CRS.from_epsg(4326) and (src.width, src.height) == (4 * 64, 3 * 64)
    if version == "1.3.0":  # a downloaded tile is an image `predict` reads as it is
        model = untrained_model(tmp_path / "rgb.pt", ("b1", "b2", "b3"), (128.0,) * 3, (64.0,) * 3)
        tile = out / "4326-0.005" / str(cells[0].x) / f"{cells[0].y}.tif"
        result = invoke("predict", model, tile, "-o", tmp_path / "pred.tif", "--device", "cpu")
        assert result.exit_code == 0, result.output
        with rasterio.open(tmp_path / "pred.tif") as pred, rasterio.open(tile) as src:
            assert (pred.crs, pred.transform, pred.shape) == (src.crs, src.transform, src.shape)


def test_unreachable_server_exits_2_and_writes_nothing(invoke, tmp_path):
    assert invoke("cover", "--bbox", BBOX, "--zoom", "15", "-o", tmp_path / "cover").exit_code == 0
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again at once: nothing listens there
    result = invoke("download", "--xyz", f"http://127.0.0.1:{port}/{{z}}/{{x}}/{{y}}.png", "--cover",
                    tmp_path / "cover.csv", "-o", tmp_path / "tiles", "--retries", "1")
    assert result.exit_code == 2, result.output
    assert f"cannot reach http://127.0.0.1:{port}/" in result.output and "server is running" in result.output
    assert not (tmp_path / "tiles").exists()


@pytest.mark.parametrize("args, fragment", [
    (["--xyz", "http://127.0.0.1:9/{z}/{x}.png"], "lacks {y}"),
    (["--xyz", "http://127.0.0.1:9/{z}/{x}/{y}/{s}.png"], "unknown placeholder"),
    (["--xyz", "ftp://127.0.0.1/{z}/{x}/{y}.png"], "not an http(s) URL"),
    (["--wms", "http://127.0.0.1:9/wms"], "--wms needs --layers"),
    (["--wms", "http://127.0.0.1:9/wms", "--xyz", "http://127.0.0.1:9/{z}/{x}/{y}"], "exactly one of"),
])
def test_bad_sources_exit_2(invoke, tmp_path, args, fragment):
    assert invoke("cover", "--bbox", BBOX, "--zoom", "15", "-o", tmp_path / "cover").exit_code == 0
    result = invoke("download", *args, "--cover", tmp_path / "cover.csv", "-o", tmp_path / "tiles")
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert not (tmp_path / "tiles").exists()


def test_xyz_source_refuses_a_grid_cover(invoke, tmp_path):
    assert invoke("cover", "--bbox", BBOX, "--grid-crs", "32618", "--grid-size", "500",
                  "-o", tmp_path / "grid").exit_code == 0
    result = invoke("download", "--xyz", "http://127.0.0.1:9/{z}/{x}/{y}.png", "--cover", tmp_path / "grid.csv",
                    "-o", tmp_path / "tiles")
    assert result.exit_code == 2 and "needs an XYZ cover" in result.output
    assert not (tmp_path / "tiles").exists()


def test_rate_limit_binds(invoke, server, tmp_path):
    assert invoke("cover", "--bbox", "-75.64,37.68,-75.63,37.69", "--zoom", "17", "-o", tmp_path / "c").exit_code == 0
    cells, _ = read_cover(tmp_path / "c.csv")
    result = invoke("download", "--xyz", server.url + "/xyz/{z}/{x}/{y}.png", "--cover", tmp_path / "c.csv",
                    "-o", tmp_path / "t", "--rate", "15", "--concurrency", "8")
    assert result.exit_code == 0, result.output
    times = sorted(e.at for e in server.log)
    assert len(times) == len(cells) == 20
    assert _max_in_window(times) <= 15 + 1
    assert times[-1] - times[0] >= (len(times) - 1) / 15 * 0.95
