"""The one vector writer: formats by extension, the CRS policy, typed properties, atomic writes; the geo helpers."""

from __future__ import annotations

import json

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.crs import CRS
from rasterio.warp import transform_bounds

from landsight.errors import ConfigError, OutputError
from landsight.geo import WGS84, area_m2, metric_crs, pixel_size_m, reproject_geometries, utm_crs
from landsight.labels import vector_out
from landsight.labels.vector_formats import is_vector, vector_format
from landsight.labels.vector_out import feature_collection, output_crs, write_features
from landsight.labels.vectors import Features, read_features
from tests.conftest import SAMPLE

UTM16 = CRS.from_epsg(32616)


@pytest.fixture(scope="module")
def scene() -> tuple[Features, tuple[float, float, float, float]]:
    """Nine boxes spread over the Atlanta image (EPSG:32616) with typed properties, and its lon/lat bounds."""
    with rasterio.open(SAMPLE / "atlanta.tif") as src:
        left, bottom, right, top = src.bounds
        lonlat = transform_bounds(src.crs, WGS84, *src.bounds, densify_pts=21)
    xs, ys = np.linspace(left, right - 20, 3), np.linspace(bottom, top - 20, 3)
    boxes = np.array([shapely.box(x, y, x + 20, y + 20) for x in xs for y in ys], dtype=object)
    props = [{"name": f"b{i}", "value": i, "area": 400.0 + i / 2, "big": i > 4, "note": None if i % 2 else "x"}
             for i in range(len(boxes))]
    return Features(boxes, props, UTM16), lonlat


def test_geojson_is_rfc7946_lon_lat_within_the_raster(scene, tmp_path):
    features, (west, south, east, north) = scene
    assert write_features(tmp_path / "b.geojson", features) == 9
    data = json.loads((tmp_path / "b.geojson").read_text())
    assert "crs" not in data and len(data["features"]) == 9
    coords = np.concatenate([np.asarray(f["geometry"]["coordinates"][0]) for f in data["features"]])
    eps = 1e-7  # coordinates are rounded to 7 decimals (1 cm)
    assert (west - eps <= coords[:, 0]).all() and (coords[:, 0] <= east + eps).all()  # x = longitude
    assert (south - eps <= coords[:, 1]).all() and (coords[:, 1] <= north + eps).all()
    answer = feature_collection(features)["features"]  # the in-memory answer follows the same policy
    shapes = [shapely.normalize(shapely.geometry.shape(f["geometry"])) for f in (*data["features"], *answer)]
    assert all(a.equals_exact(b, 2e-7) for a, b in zip(shapes[:9], shapes[9:], strict=True))


def test_properties_keep_their_types(scene, tmp_path):
    features, _ = scene
    write_features(tmp_path / "b.geojson", features)
    props = [f["properties"] for f in json.loads((tmp_path / "b.geojson").read_text())["features"]]
    assert props == [{k: v for k, v in p.items()} for p in features.properties]
    assert [type(props[0][k]) for k in ("name", "value", "area", "big")] == [str, int, float, bool]
    nan = Features(features.geometries[:2], [{"score": float("nan"), "n": np.int64(3)}, {"score": 1.5, "n": None}],
                   UTM16)
    write_features(tmp_path / "nan.geojson", nan)
    props = [f["properties"] for f in json.loads((tmp_path / "nan.geojson").read_text())["features"]]
    assert props == [{"score": None, "n": 3}, {"score": 1.5, "n": None}]


def test_keep_crs_writes_the_source_crs(scene, tmp_path):
    features, _ = scene
    write_features(tmp_path / "utm.geojson", features, crs="raster")
    data = json.loads((tmp_path / "utm.geojson").read_text())
    assert data["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32616"  # GDAL's legacy member
    assert shapely.geometry.shape(data["features"][0]["geometry"]).equals_exact(features.geometries[0], 1e-6)
    write_features(tmp_path / "merc.geojson", features, crs="EPSG:3857")
    assert read_features(tmp_path / "merc.geojson").crs.to_epsg() == 3857


def test_geopackage_keeps_the_crs(scene, tmp_path):
    features, _ = scene
    write_features(tmp_path / "b.gpkg", features)
    back = read_features(tmp_path / "b.gpkg")
    assert back.crs == UTM16 and pyogrio.read_info(tmp_path / "b.gpkg")["layer_name"] == "b"
    assert shapely.equals_exact(back.geometries, features.geometries, 1e-9).all()
    assert [p["value"] for p in back.properties] == list(range(9)) and back.properties[1]["note"] is None
    write_features(tmp_path / "ll.gpkg", features, crs="EPSG:4326")
    assert read_features(tmp_path / "ll.gpkg").crs == WGS84


def test_geojson_sequence_has_one_feature_per_line(scene, tmp_path):
    features, (west, _, east, _) = scene
    write_features(tmp_path / "b.geojsonl", features)
    lines = (tmp_path / "b.geojsonl").read_text().splitlines()
    assert len(lines) == 9 and all(json.loads(line)["type"] == "Feature" for line in lines)
    assert all(west <= json.loads(line)["geometry"]["coordinates"][0][0][0] <= east for line in lines)
    with pytest.raises(ConfigError, match="WGS 84"):
        write_features(tmp_path / "c.geojsons", features, crs="raster")
    assert not (tmp_path / "c.geojsons").exists()


def test_a_failed_write_leaves_no_file(scene, tmp_path, monkeypatch):
    features, _ = scene
    write_features(tmp_path / "old.geojson", features)
    before = (tmp_path / "old.geojson").read_bytes()

    def half_write(path, *args, **kwargs):
        with open(path, "w") as f:
            f.write('{"type": "FeatureCollection", "features": [')
        raise pyogrio.errors.DataSourceError("No space left on device")

    def silent_truncation(path, *args, **kwargs):  # GDAL only logs some failed writes (file-size limits)
        with open(path, "w") as f:
            f.write('{"type": "FeatureCollection", "features": [')

    for writer, message in ((half_write, "No space left"), (silent_truncation, "incomplete after writing")):
        monkeypatch.setattr(vector_out, "ogr_write", writer)
        for name in ("new.geojson", "old.geojson"):
            with pytest.raises(OutputError, match=message):
                write_features(tmp_path / name, features, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.geojson"]
    assert (tmp_path / "old.geojson").read_bytes() == before


def test_formats_by_extension():
    assert vector_format("a.json").driver == "GeoJSON" and vector_format("a.GPKG").driver == "GPKG"
    assert vector_format("a.geojsons").driver == vector_format("a.geojsonl").driver == "GeoJSONSeq"
    assert vector_format("a.fgb").driver == "FlatGeobuf"
    for bad, reason in (("a.shp", "several files"), ("a.xyz", "extension"), ("a.csv", "drops the geometries")):
        with pytest.raises(ConfigError, match=reason):
            vector_format(bad)
    assert is_vector("a.shp") and is_vector("b.geojsonl") and not is_vector("c.tif")
    assert output_crs("a.gpkg", UTM16) == UTM16 and output_crs("a.geojson", UTM16) == WGS84
    with pytest.raises(ConfigError, match="EPSG:4326"):
        output_crs("a.gpkg", UTM16, "not a crs")


def test_utm_zone_and_geodesic_areas():
    assert utm_crs(-84.39, 33.75).to_epsg() == 32616 and utm_crs(18.45, -33.92).to_epsg() == 32734
    assert utm_crs(-84.0, 33.6).to_epsg() == 32617  # on the zone edge: the eastern zone
    assert metric_crs(UTM16, (0, 0, 1, 1)) == UTM16
    box = np.array([shapely.box(740000, 3720000, 741000, 3721000)], dtype=object)  # 1 km² in EPSG:32616
    assert area_m2(box, UTM16)[0] == pytest.approx(1e6)
    lonlat = reproject_geometries(shapely.segmentize(box, 10.0), UTM16, WGS84)
    assert area_m2(lonlat, WGS84)[0] == pytest.approx(1e6, rel=2e-3)  # UTM scale error near its meridian
    with rasterio.open(SAMPLE / "atlanta.tif") as src:
        assert pixel_size_m(src) == pytest.approx(0.5)


@pytest.mark.parametrize("name", ["e.geojson", "e.geojsonl", "e.gpkg", "e.fgb"])
def test_empty_layers_are_written(tmp_path, name):
    assert write_features(tmp_path / name, Features(np.array([], dtype=object), [], UTM16)) == 0
    assert (tmp_path / name).is_file()
