"""STAC search of a static catalogue served on 127.0.0.1, and `predict` straight from a STAC item's COGs over HTTP."""

import json

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

pytest.importorskip("pystac_client")

from landsight.acquire.area import area_from_geojson
from landsight.acquire.remote import build_vrt, remote_reads, select_bands
from landsight.acquire.stac import load_items
from tests.acquire.conftest import untrained_model
from tests.acquire.stac_catalog import BLOCK, S2, write_catalog
from tests.servers import running

ITEM = "s2-coast/s2-coast-clear/s2-coast-clear.json"
# 48 x 40 px of the crop (480 x 400 m, columns 100..147, rows 105..144) across the corner of four 128 px blocks
AOI_WINDOW = Window(100, 105, 48, 40)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("stac")
    write_catalog(root)
    return root


@pytest.fixture
def server(catalog):
    with running(catalog, seconds=120) as srv:
        yield srv


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "s2.pt"
    return untrained_model(path, ("B02", "B03", "B04", "B08"), (1000.0, 900.0, 800.0, 1500.0),
                           (200.0, 250.0, 300.0, 900.0))


@pytest.fixture(scope="module")
def aoi(tmp_path_factory):
    with rasterio.open(S2) as src:
        left, bottom, right, top = rasterio.windows.bounds(AOI_WINDOW, src.transform)
        crs = src.crs
    from rasterio.warp import transform_geom

    inset = 2.0  # metres inside the pixel edges: the window snaps outwards to exactly these pixels
    box = {"type": "Polygon", "coordinates": [[(left + inset, bottom + inset), (right - inset, bottom + inset),
                                               (right - inset, top - inset), (left + inset, top - inset),
                                               (left + inset, bottom + inset)]]}
    path = tmp_path_factory.mktemp("aoi") / "aoi.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": transform_geom(crs, "EPSG:4326", box)}]}))
    return path


def _search(invoke, url, out, *extra):
    return invoke("stac", "search", url, "--collection", "s2-coast", "--bbox", "-75.64,37.68,-75.62,37.69",
                  "-o", out, *extra)


def test_search_filters_by_area_time_and_cloud(invoke, server, tmp_path):
    url = server.url + "/files/catalog.json"
    result = _search(invoke, url, tmp_path / "a.json", "--datetime", "2016-05-01/2016-06-30", "--max-cloud", "20")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "a.json").read_text())
    assert data["type"] == "FeatureCollection" and [f["id"] for f in data["features"]] == ["s2-coast-clear"]
    assert data["features"][0]["assets"]["B02"]["href"] == server.url + "/files/cogs/B02.tif"
    assert _search(invoke, url, tmp_path / "b.json").exit_code == 0
    assert len(json.loads((tmp_path / "b.json").read_text())["features"]) == 2
    assert _search(invoke, url, tmp_path / "c.json", "--datetime", "2016-07-01/..").exit_code == 0
    assert [f["id"] for f in json.loads((tmp_path / "c.json").read_text())["features"]] == ["s2-coast-cloudy"]
    result = invoke("stac", "search", url, "--collection", "s2-coast", "--bbox", "10,10,11,11", "-o", tmp_path / "d")
    assert result.exit_code == 0 and json.loads((tmp_path / "d").read_text())["features"] == []


@pytest.mark.parametrize("args, fragment", [
    (["--collection", "nope"], "collection 'nope' not found"),
    (["--datetime", "2016-07-01/2016-06-01"], "ends before it starts"),
    (["--datetime", "June"], "not an ISO date"),
    (["--max-cloud", "150"], "within 0..100"),
])
def test_search_bad_input_exits_2(invoke, server, tmp_path, args, fragment):
    base = ["stac", "search", server.url + "/files/catalog.json", "--bbox", "-75.64,37.68,-75.62,37.69"]
    if "--collection" not in args:
        base += ["--collection", "s2-coast"]
    result = invoke(*base, *args, "-o", tmp_path / "x.json")
    assert result.exit_code == 2, result.output
    assert fragment in result.output and not (tmp_path / "x.json").exists()


def test_search_of_an_unreachable_catalogue_exits_2(invoke, tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = _search(invoke, f"http://127.0.0.1:{port}/catalog.json", tmp_path / "x.json")
    assert result.exit_code == 2 and "cannot open the STAC catalogue" in result.output
    assert not (tmp_path / "x.json").exists()


def _blocks_bytes(path, window):
    """Compressed bytes of the full-resolution blocks of `path` that `window` touches."""
    total = 0
    with rasterio.open(path) as src:
        for row in range(window.row_off // BLOCK, (window.row_off + window.height - 1) // BLOCK + 1):
            for col in range(window.col_off // BLOCK, (window.col_off + window.width - 1) // BLOCK + 1):
                total += int(src.get_tag_item(f"BLOCK_SIZE_{col}_{row}", "TIFF", bidx=1))
    return total


def test_predict_from_a_stac_item_over_http_equals_local_files(invoke, server, catalog, model, aoi, tmp_path):
    remote = tmp_path / "remote.tif"
    result = invoke("predict", model, f"{server.url}/files/{ITEM}", "--aoi", aoi, "-o", remote, "--device", "cpu")
    assert result.exit_code == 0, result.output
    tifs = [e for e in server.log if e.target.endswith(".tif")]
    read = sum(e.sent for e in tifs)
    windows = sum(_blocks_bytes(catalog / "cogs" / f"{b}.tif", AOI_WINDOW) for b in ("B02", "B03", "B04", "B08"))
    sizes = sum((catalog / "cogs" / f"{b}.tif").stat().st_size for b in ("B02", "B03", "B04", "B08"))
    print(f"remote predict: {len(tifs)} HTTP requests to the COGs, {read} bytes read; the AOI's blocks hold "
          f"{windows} compressed bytes ({read / windows:.2f}x); the four COGs hold {sizes} bytes")
    assert read < 2 * windows

    local = tmp_path / "local.tif"
    assert invoke("predict", model, catalog / ITEM, "--aoi", aoi, "-o", local, "--device", "cpu").exit_code == 0
    crop = tmp_path / "crop.tif"
    with rasterio.open(S2) as src:
        profile = {**src.profile, "width": AOI_WINDOW.width, "height": AOI_WINDOW.height,
                   "transform": src.window_transform(AOI_WINDOW), "tiled": False}
        profile.pop("blockxsize"), profile.pop("blockysize")
        with rasterio.open(crop, "w", **profile) as dst:
            dst.write(src.read(window=AOI_WINDOW))
            dst.descriptions = src.descriptions
    direct = tmp_path / "direct.tif"
    assert invoke("predict", model, crop, "-o", direct, "--device", "cpu").exit_code == 0
    with rasterio.open(remote) as a, rasterio.open(local) as b, rasterio.open(direct) as c:
        assert a.tags()["source_image"] == f"{server.url}/files/{ITEM}"  # the item, not the VRT made from it
        assert a.shape == (AOI_WINDOW.height, AOI_WINDOW.width)
        assert a.transform == b.transform == c.transform and a.crs == c.crs
        assert np.array_equal(a.read(), b.read()) and np.array_equal(a.read(), c.read())
        assert len(np.unique(a.read())) > 1  # not a constant answer


def test_missing_bands_are_refused_by_name(invoke, server, model, aoi, tmp_path):
    result = invoke("predict", model, f"{server.url}/files/{ITEM}", "--aoi", aoi, "-o", tmp_path / "p.tif",
                    "--stac-bands", "blue,green,red,swir16")
    assert result.exit_code == 2, result.output
    assert "lacks band(s) ['swir16']" in result.output and "'B8A'" in result.output
    assert not (tmp_path / "p.tif").exists()


def test_common_names_pick_the_same_bands(server, catalog):
    item = load_items(f"{server.url}/files/{ITEM}")[0]
    by_common = select_bands(item, ["blue", "nir"])
    assert [b.path.rsplit("/", 1)[1] for b in by_common] == ["B02.tif", "B08.tif"]


def test_20m_asset_is_resampled_onto_the_10m_grid(server, catalog, aoi, tmp_path):
    item = load_items(f"{server.url}/files/{ITEM}")[0]
    bands = select_bands(item, ["B04", "B8A"])
    with remote_reads():
        vrt = build_vrt(bands, area_from_geojson(aoi), tmp_path / "x.vrt")
        with rasterio.open(vrt) as src:
            assert (src.width, src.height, src.res) == (AOI_WINDOW.width, AOI_WINDOW.height, (10.0, 10.0))
            red, coarse = src.read(1), src.read(2).astype(float)
    with rasterio.open(S2) as src:
        assert np.array_equal(red, src.read(3, window=AOI_WINDOW))
        nir = src.read(4, window=AOI_WINDOW).astype(float)
    # B8A is B08 averaged over 2 x 2: brought back to 10 m it follows B08 closely
    assert np.corrcoef(coarse.ravel(), nir.ravel())[0, 1] > 0.9
    assert abs(coarse.mean() - nir.mean()) < 0.05 * nir.mean()


def test_search_through_a_stac_api_uses_item_search(invoke, server, tmp_path):
    result = _search(invoke, server.url + "/api", tmp_path / "a.json", "--datetime", "2016-05-01/2016-06-30",
                     "--max-cloud", "20")
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "a.json").read_text())
    assert [f["id"] for f in data["features"]] == ["s2-coast-clear"]
    assert data["features"][0]["assets"]["B08"]["href"] == server.url + "/files/cogs/B08.tif"
    (search,) = server.searches  # one /search request carrying the filters; no catalogue walk
    assert search["collections"] == ["s2-coast"] and search["query"] == {"eo:cloud_cover": {"lte": 20}}
    assert search["intersects"]["type"] == "Polygon" and search["datetime"].startswith("2016-05-01")
    assert not any("/files/s2-coast" in e.target for e in server.log)


def test_dataset_check_reads_a_stac_item_over_http(invoke, server, tmp_path):
    item = f"{server.url}/files/{ITEM}"
    labels = S2.parent / "labels.geojson"
    result = invoke("dataset", "check", item, labels, "--class-field", "class", "--chip-size", "64",
                    "--stac-bands", "B02,B03,B04,B08", "--json", tmp_path / "check.json")
    assert result.exit_code == 0, result.output
    local = tmp_path / "local.json"
    assert invoke("dataset", "check", S2, labels, "--class-field", "class", "--chip-size", "64",
                  "--json", local).exit_code == 0
    remote_report, local_report = (json.loads(p.read_text()) for p in (tmp_path / "check.json", local))
    for key in ("image_size", "image_resolution", "features", "class_pixels", "nodata_fraction"):
        assert remote_report.get(key) == local_report.get(key), key
    result = invoke("dataset", "check", item, labels, "--class-field", "class")
    assert result.exit_code == 2 and "--stac-bands" in result.output


@pytest.mark.slow
def test_train_reads_a_stac_item_over_http(invoke, server, tmp_path):
    """About 40 s on 2 busy cores, as long as the same training on the local file."""
    from landsight.models.model_file import load_model_file

    result = invoke("train", f"{server.url}/files/{ITEM}", S2.parent / "labels.geojson", "--class-field", "class",
                    "--ignore-unlabelled", "--stac-bands", "B02,B03,B04,B08", "-o", tmp_path / "m.pt",
                    "--chip-size", "64", "--epochs", "1", "--chips-per-epoch", "8", "--batch-size", "8",
                    "--weights", "none")
    assert result.exit_code == 0, result.output
    assert load_model_file(tmp_path / "m.pt").bands.names == ("B02", "B03", "B04", "B08")


def test_pipeline_runs_on_a_stac_item_over_http_like_predict(invoke, server, catalog, model, aoi, tmp_path):
    pytest.importorskip("apache_beam")
    single = tmp_path / "single.tif"
    url = f"{server.url}/files/{ITEM}"
    assert invoke("predict", model, url, "--aoi", aoi, "-o", single, "--device", "cpu").exit_code == 0
    out = tmp_path / "out"
    result = invoke("pipeline", "run", "--input", url, "--aoi", aoi, "--model", model, "-o", out, "--no-polygons")
    assert result.exit_code == 0, result.output
    assert "1 raster(s) done, 0 failed" in result.output
    with rasterio.open(out / "s2-coast-clear.tif") as mask, rasterio.open(single) as ref:
        assert mask.transform == ref.transform and mask.crs == ref.crs
        assert np.array_equal(mask.read(), ref.read())
    result = invoke("pipeline", "run", "--input", url, "--aoi", aoi, "--model", model, "-o", tmp_path / "x",
                    "--stac-bands", "blue,green")
    assert result.exit_code == 2 and "names 2 band(s) but the model reads 4" in result.output


def test_a_remote_item_naming_a_local_file_is_refused(invoke, server, catalog, model, tmp_path):
    item = json.loads((catalog / ITEM).read_text())
    asset = next(a for a in item["assets"].values() if a.get("eo:bands"))
    asset["href"] = f"file://{S2}"  # a file on the machine running landsight, not on the server
    (catalog / "planted.json").write_text(json.dumps({**item, "links": []}))
    result = invoke("predict", model, f"{server.url}/files/planted.json", "-o", tmp_path / "p.tif")
    assert result.exit_code == 2 and "not an http(s) URL" in result.output and str(S2) in result.output
    assert not (tmp_path / "p.tif").exists()
