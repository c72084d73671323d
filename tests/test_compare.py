"""compare: the QoD formula on hand-computed cases, per-tile scores, and per-feature statuses on planted edits."""

from __future__ import annotations

import ast
import copy
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner
from rasterio.transform import from_origin
from shapely import affinity

from landsight.cli.main import cli
from landsight.compare import MatchParams, TileGrid, compare_prediction, qod, tile_iou
from landsight.errors import ConfigError
from landsight.labels.classes import ClassTable
from landsight.labels.rasterize import classes_tag
from landsight.report.schema import read_report

SAMPLE = Path(__file__).parent.parent / "landsight" / "sample_data"
DROPPED, SHIFTED, FAKE = 102924, 102919, -1
FAKE_BOX = (733740.0, 3724800.0, 733752.0, 3724812.0)
"""A 12 x 12 m 'building' on open ground, 45 m from the nearest real one (EPSG:32616)."""
CRS_MEMBER = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32616"}}


# --- QoD and IoU: the formula of the issue on values worked out by hand -------------------------------------------

@pytest.mark.parametrize(("iou", "fg_pred", "fg_label", "pixels", "expected"), [
    (1.0, 400, 400, 1000, 100.0),                       # perfect agreement
    (1.0, 0, 0, 1000, 100.0),                           # empty tile
    (0.5, 75, 75, 1000, 76.7645257714064769),           # 100 - 0.5 * (ln 8.5 + 1e-7) * 100 / ln 100
    (0.0, 1000, 0, 1000, 0.0),                          # 100 - (ln 101 + 1e-7) * 21.71... = -0.216 -> clamped
    (0.0, 10, 0, 10000, 97.9303635706163384),           # ratio 0.1: a speck of disagreement is cheap
    (0.6, 256, 256, 1024, 71.7005321719946769),         # ratio 25
    (0.0, 0, 64, 1024, 56.9830974999779056),            # ratio 6.25
])
def test_qod_hand_computed(iou, fg_pred, fg_label, pixels, expected):
    assert qod(iou, fg_pred, fg_label, pixels) == pytest.approx(expected, abs=1e-9)


def test_tile_iou_and_qod_edge_cases():
    assert tile_iou(192, 64, 64) == pytest.approx(0.6)
    assert tile_iou(0, 0, 0) == 1.0
    assert tile_iou(0, 5, 0) == 0.0
    with pytest.raises(ValueError, match="pixels=0"):
        qod(1.0, 0, 0, 0)


# --- a tiny synthetic scene whose tile counts are known -----------------------------------------------------------

def _box_px(col0: int, row0: int, col1: int, row1: int) -> shapely.Polygon:
    """A box in pixel coordinates of the 64 x 64 px, 1 m synthetic grid -> EPSG:32616 metres."""
    return shapely.box(500000 + col0, 4000000 - row1, 500000 + col1, 4000000 - row0)


def _write_geojson(path: Path, geoms: list[shapely.Geometry], props: list[dict]) -> Path:
    features = [{"type": "Feature", "properties": p, "geometry": shapely.geometry.mapping(g)}
                for g, p in zip(geoms, props, strict=True)]
    path.write_text(json.dumps({"type": "FeatureCollection", "crs": CRS_MEMBER, "features": features}))
    return path


@pytest.fixture
def scene(tmp_path: Path) -> dict[str, Path]:
    """Prediction: a 16 x 16 px square in tile (0, 0). Open data: the same square 4 px to the right (tp 192, fp 64,
    fn 64 -> IoU 0.6) and an 8 x 8 px square in tile (1, 0) that the prediction lacks."""
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": 1, "dtype": "uint8", "nodata": 255,
               "crs": "EPSG:32616", "transform": from_origin(500000, 4000000, 1, 1)}
    mask = np.zeros((64, 64), dtype=np.uint8)
    mask[8:24, 8:24] = 1
    table = ClassTable.from_names(["building"], background=True)
    with rasterio.open(tmp_path / "pred.tif", "w", **profile) as dst:
        dst.write(mask, 1)
        dst.update_tags(classes=classes_tag(table))
    prob = np.stack([250 - 250 * mask, 250 * mask]).astype(np.uint8)
    with rasterio.open(tmp_path / "prob.tif", "w", **{**profile, "count": 2}) as dst:
        dst.write(prob)
        dst.scales = (1 / 250, 1 / 250)
        dst.descriptions = ("p(background)", "p(building)")
    labels = _write_geojson(tmp_path / "labels.geojson", [_box_px(12, 8, 28, 24), _box_px(40, 8, 48, 16)],
                            [{"osm_id": 1, "building": "yes"}, {"osm_id": 2, "building": "house"}])
    polygons = _write_geojson(tmp_path / "pred.geojson", [_box_px(8, 8, 24, 24)], [{"class": "building"}])
    return {"pred": tmp_path / "pred.tif", "prob": tmp_path / "prob.tif", "polygons": polygons, "labels": labels}


def _tiles(summary_dir: Path) -> dict[str, dict]:
    collection = json.loads((summary_dir / "layers" / "tiles.geojson").read_text())
    return {f["properties"]["id"]: f["properties"] for f in collection["features"]}


@pytest.mark.parametrize("kind", ["pred", "prob", "polygons"])
def test_tile_scores_match_hand_counts(scene, tmp_path, kind):
    image = scene["pred"] if kind == "polygons" else None
    summary = compare_prediction(scene[kind], scene["labels"], tmp_path / "report", image=image,
                                 grid=TileGrid("regular", size=32))
    tiles = _tiles(tmp_path / "report")
    assert set(tiles) == {"0/0", "1/0", "0/1", "1/1"}
    assert (tiles["0/0"]["tp"], tiles["0/0"]["fp"], tiles["0/0"]["fn"], tiles["0/0"]["pixels"]) == (192, 64, 64, 1024)
    assert tiles["0/0"]["iou"] == pytest.approx(0.6)
    assert tiles["0/0"]["qod"] == pytest.approx(71.7005321719946769, abs=1e-4)
    assert tiles["1/0"]["qod"] == pytest.approx(56.9830974999779056, abs=1e-4)
    assert tiles["0/1"]["qod"] == tiles["1/1"]["qod"] == 100.0
    assert [t["id"] for t in summary.tiles["worst"]] == ["1/0", "0/0"]
    assert summary.pixels["per_class"]["building"]["iou"] == pytest.approx(192 / (192 + 64 + 128))
    shifted = json.loads((tmp_path / "report" / "layers" / "shifted.geojson").read_text())["features"]
    assert [f["properties"]["osm_id"] for f in shifted] == [1]
    assert shifted[0]["properties"]["offset_m"] == pytest.approx(4.0, abs=0.05)
    assert shifted[0]["properties"]["dx_m"] == pytest.approx(-4.0, abs=0.05)
    unsupported = json.loads((tmp_path / "report" / "layers" / "unsupported.geojson").read_text())["features"]
    assert [(f["properties"]["osm_id"], f["properties"]["building"]) for f in unsupported] == [(2, "house")]


def test_xyz_keys_match_projecting_every_pixel():
    """The interpolated keys (pixel by pixel only where a knot cell spans two tiles) against every pixel centre
    projected to Web Mercator on its own, on the real 0.5 m Atlanta grid (UTM), in uneven windows."""
    from rasterio.warp import transform as warp_transform
    from rasterio.windows import Window

    zoom, half = 19, 20037508.342789244
    grid = TileGrid("xyz", zoom)
    with rasterio.open(SAMPLE / "atlanta.tif") as src:
        for window in (Window(0, 0, 300, 450), Window(237, 411, 250, 333), Window(5, 9, 1, 40)):
            keys = grid.keys(window, src.transform, src.crs, src.width)
            rows, cols = np.mgrid[window.row_off:window.row_off + window.height,
                                  window.col_off:window.col_off + window.width]
            xs, ys = src.transform @ (cols.ravel() + 0.5, rows.ravel() + 0.5)
            mx, my = (np.asarray(v).reshape(rows.shape) for v in warp_transform(src.crs, "EPSG:3857", xs, ys))
            span = 2 * half / 2**zoom
            exact = ((half - my) // span).astype(np.int64) * 2**zoom + ((mx + half) // span).astype(np.int64)
            np.testing.assert_array_equal(keys, exact)
    assert len(np.unique(grid.keys(Window(0, 0, 300, 450), src.transform, src.crs, src.width))) >= 6


def test_xyz_tiles_cover_the_raster(scene, tmp_path):
    summary = compare_prediction(scene["pred"], scene["labels"], tmp_path / "report", grid=TileGrid("xyz", 21))
    tiles = _tiles(tmp_path / "report")
    assert all(t["z"] == 21 and t["id"] == f"21/{t['x']}/{t['y']}" for t in tiles.values())
    assert sum(t["pixels"] for t in tiles.values()) == 64 * 64
    assert summary.pixels["pixels"] == 64 * 64


def test_polygons_without_image_and_unknown_class_raise(scene, tmp_path):
    with pytest.raises(ConfigError, match="`image`"):
        compare_prediction(scene["polygons"], scene["labels"], tmp_path / "a")
    with pytest.raises(ConfigError, match=r"roads.*\['background', 'building'\]"):
        compare_prediction(scene["pred"], scene["labels"], tmp_path / "b", class_name="roads")
    with pytest.raises(ConfigError, match="IoU threshold"):
        MatchParams(iou_threshold=0.1, match_iou=0.25)


# --- acceptance 1: Atlanta, OSM buildings with planted edits ------------------------------------------------------

def _edit_osm(source: Path, out: Path) -> dict[int, shapely.Geometry]:
    """Drop one building, shift one 5 m east, add a fake one; returns the original geometries by osm_id."""
    data = json.loads(source.read_text())
    originals = {f["properties"]["osm_id"]: shapely.geometry.shape(f["geometry"]) for f in data["features"]}
    kept = []
    for feature in data["features"]:
        osm_id = feature["properties"]["osm_id"]
        if osm_id == DROPPED:
            continue
        if osm_id == SHIFTED:
            feature = copy.deepcopy(feature)
            feature["geometry"] = shapely.geometry.mapping(affinity.translate(originals[osm_id], 5.0, 0.0))
        kept.append(feature)
    fake = {k: "" for k in data["features"][0]["properties"]} | {"osm_id": FAKE, "building": "yes"}
    kept.append({"type": "Feature", "properties": fake, "geometry": shapely.geometry.mapping(shapely.box(*FAKE_BOX))})
    out.write_text(json.dumps({**data, "features": kept}))
    return originals


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """`landsight rasterize` of the OSM buildings as the prediction, compared with an edited copy of OSM."""
    tmp = tmp_path_factory.mktemp("planted")
    runner = CliRunner()
    image, labels = SAMPLE / "atlanta.tif", SAMPLE / "atlanta-buildings.geojson"
    result = runner.invoke(cli, ["rasterize", str(image), str(labels), "-o", str(tmp / "mask.tif"),
                                 "--class-name", "building"])
    assert result.exit_code == 0, result.output
    originals = _edit_osm(labels, tmp / "edited.geojson")
    report = tmp / "report"
    result = runner.invoke(cli, ["compare", str(tmp / "mask.tif"), str(tmp / "edited.geojson"), "-o", str(report),
                                 "--image", str(image), "--zoom", "19"])
    assert result.exit_code == 0, result.output
    layers = {name: json.loads((report / "layers" / f"{name}.geojson").read_text())["features"]
              for name in ("confirmed", "shifted", "unsupported", "missing", "tiles")}
    return {"tmp": tmp, "report": report, "originals": originals, "layers": layers, "output": result.output,
            "summary": read_report(report / "summary.json", "compare")}


def _in_utm(feature: dict) -> shapely.Geometry:
    from rasterio.warp import transform_geom

    return shapely.geometry.shape(transform_geom("EPSG:4326", "EPSG:32616", feature["geometry"]))


def test_planted_edits_found_exactly(planted):
    layers, originals = planted["layers"], planted["originals"]
    ids = {name: sorted(f["properties"]["osm_id"] for f in layers[name]) for name in ("confirmed", "shifted",
                                                                                      "unsupported")}
    assert ids["unsupported"] == [FAKE]
    assert ids["shifted"] == [SHIFTED]
    assert ids["confirmed"] == sorted(set(originals) - {DROPPED, SHIFTED})
    assert len(layers["missing"]) == 1
    missing = _in_utm(layers["missing"][0])
    dropped = originals[DROPPED]
    assert shapely.area(missing.intersection(dropped)) / shapely.area(missing.union(dropped)) > 0.85
    shifted = layers["shifted"][0]["properties"]
    assert shifted["offset_m"] == pytest.approx(5.0, abs=0.3)
    assert shifted["dx_m"] == pytest.approx(-5.0, abs=0.3) and abs(shifted["dy_m"]) < 0.3
    assert shifted["aligned_iou"] > 0.9 and shifted["iou"] < shifted["aligned_iou"]
    assert all(f["properties"]["iou"] > 0.75 and f["properties"]["offset_m"] < 0.5 for f in layers["confirmed"])
    assert all(f["properties"]["building"] for f in layers["confirmed"])  # OSM attributes kept
    assert "unsupported" in planted["output"] and "missing" in planted["output"]


def test_planted_tiles_and_summary(planted):
    summary, layers, originals = planted["summary"], planted["layers"], planted["originals"]
    edits = shapely.union_all([originals[DROPPED], originals[SHIFTED], affinity.translate(originals[SHIFTED], 5, 0),
                               shapely.box(*FAKE_BOX)])
    touched = {f["properties"]["id"] for f in layers["tiles"] if _in_utm(f).intersects(edits)}
    imperfect = {f["properties"]["id"] for f in layers["tiles"] if f["properties"]["qod"] < 100}
    assert imperfect == touched  # pixels agree exactly everywhere else: same burn on both sides
    worst = summary["tiles"]["worst"]
    assert [t["qod"] for t in worst] == sorted(t["qod"] for t in worst) and all(t["qod"] < 80 for t in worst)
    assert {t["id"] for t in worst} <= touched and worst
    feats = summary["features"]
    assert {k: feats[k]["count"] for k in feats} == {"confirmed": 30, "shifted": 1, "unsupported": 1, "missing": 1}
    assert feats["unsupported"]["area_m2"] == pytest.approx(144.0)
    prov = summary["provenance"]
    assert prov["created_utc"] and len(prov["inputs"]["open_data"]["sha256"]) == 64
    assert prov["inputs"]["prediction"]["tags"]["labels"].endswith("atlanta-buildings.geojson")
    assert prov["parameters"]["grid"] == "xyz" and prov["parameters"]["zoom"] == 19
    report = planted["report"]
    for name in ("report.html", "review.html", "assets/leaflet.js", "assets/LICENSE-leaflet", "overlays/imagery.png"):
        assert (report / name).is_file(), name
    assert "review.html" in (report / "report.html").read_text()


def test_cli_refuses_to_overwrite_the_report(planted):
    tmp, runner = planted["tmp"], CliRunner()
    args = ["compare", str(tmp / "mask.tif"), str(SAMPLE / "atlanta-buildings.geojson"), "-o", str(planted["report"])]
    result = runner.invoke(cli, args)
    assert result.exit_code == 2 and "--overwrite" in result.output
    result = runner.invoke(cli, [*args, "--overwrite", "--grid", "regular", "--tile-size", "300"])
    assert result.exit_code == 0, result.output
    summary = json.loads((planted["report"] / "summary.json").read_text())
    assert summary["features"]["confirmed"]["count"] == 32 and summary["tiles"]["count"] == 6
    assert summary["features"]["missing"]["count"] == summary["features"]["unsupported"]["count"] == 0


def test_geo_modules_do_not_import_torch_or_click():
    """torch never loads with them; click is not imported by them (rasterio.errors itself pulls click in)."""
    code = "import sys, landsight.compare, landsight.change, landsight.review; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    package = Path(__file__).parent.parent / "landsight"
    sources = [*(package / "compare").glob("*.py"), *(package / "review").glob("*.py"), package / "change.py"]
    for source in sources:
        for node in ast.walk(ast.parse(source.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [n for n in names if n.split(".")[0] in ("torch", "click")], (source, names)


def test_class_by_value_and_metric_crs(scene, tmp_path):
    from rasterio.crs import CRS

    from landsight.geo import metric_crs

    summary = compare_prediction(scene["pred"], scene["labels"], tmp_path / "r", class_name="1",
                                 grid=TileGrid("regular", size=64))
    assert summary.class_name == "building" and summary.tiles["count"] == 1
    assert metric_crs(CRS.from_epsg(32616), (0, 0, 1, 1)) == CRS.from_epsg(32616)
    assert metric_crs(CRS.from_epsg(4326), (-84.3, 33.6, -84.2, 33.7)) == CRS.from_epsg(32616)
    assert metric_crs(CRS.from_epsg(4326), (18.4, -33.95, 18.5, -33.9)) == CRS.from_epsg(32734)


def test_layers_are_lon_lat_unless_the_raster_crs_is_asked_for(scene, tmp_path):
    compare_prediction(scene["pred"], scene["labels"], tmp_path / "ll", grid=TileGrid("regular", size=32))
    compare_prediction(scene["pred"], scene["labels"], tmp_path / "utm", grid=TileGrid("regular", size=32),
                       crs="raster")
    for name in ("shifted", "prediction", "tiles"):
        lonlat = json.loads((tmp_path / "ll" / "layers" / f"{name}.geojson").read_text())
        utm = json.loads((tmp_path / "utm" / "layers" / f"{name}.geojson").read_text())
        assert "crs" not in lonlat and utm["crs"] == CRS_MEMBER, name
        west, _, east, _ = shapely.total_bounds([shapely.geometry.shape(f["geometry"]) for f in lonlat["features"]])
        assert -88 < west < east < -86  # EPSG:32616 500000 E is 87 W
        left, _, right, _ = shapely.total_bounds([shapely.geometry.shape(f["geometry"]) for f in utm["features"]])
        assert 499999.99 < left < right < 500064.01  # the tiles come back from WGS 84

