"""vectorize: mask -> polygons, checked by round trips on the real Atlanta buildings and the NC land-cover labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from landsight.labels.classes import ClassTable
from landsight.labels.rasterize import classes_tag
from landsight.labels.vectors import read_features
from landsight.vectorize import mask_features, vectorize_mask

PIXEL_AREA = 0.25  # Atlanta: 0.5 m pixels


def _load(path):
    collection = json.loads(path.read_text())
    geoms = np.array([shapely.geometry.shape(f["geometry"]) for f in collection["features"]], dtype=object)
    return collection, geoms




def best_ious(truth: np.ndarray, out: np.ndarray) -> np.ndarray:
    """IoU of each truth polygon with the output polygon it overlaps most."""
    ious = []
    for polygon in truth:
        overlap = shapely.area(shapely.intersection(out, polygon))
        best = out[int(np.argmax(overlap))]
        ious.append(overlap.max() / shapely.union(best, polygon).area)
    return np.array(ious)


def test_round_trip_recovers_osm_buildings(invoke, tmp_path, atlanta_mask, atlanta_image, atlanta_labels):
    out = tmp_path / "buildings.geojson"
    result = invoke("vectorize", atlanta_mask, "-o", out, "--crs", "raster")
    assert result.exit_code == 0, result.output
    collection, geoms = _load(out)
    assert {f["properties"]["class"] for f in collection["features"]} == {"building"}  # background 0 skipped
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32616"  # GDAL's legacy member
    assert shapely.is_valid(geoms).all()
    osm = read_features(atlanta_labels).geometries
    ious = best_ious(osm, geoms)
    # The 0.5 m mask bounds what comes back: every building of 80 m² (320 px) or more returns at IoU >= 0.95;
    # the smallest sheds (18-57 m², 2-4 m wide) at >= 0.85.
    assert ious[shapely.area(osm) >= 80].min() >= 0.95
    assert ious.min() >= 0.85
    assert np.median(ious) >= 0.965
    # Cut corners follow slanted outlines better than pixel edges, for every building.
    invoke("vectorize", atlanta_mask, "-o", tmp_path / "edges.geojson", "--pixel-edges", "--crs", "raster")
    _, edges = _load(tmp_path / "edges.geojson")
    assert (ious >= best_ious(osm, edges) - 1e-9).all()
    # The cuts never reach a pixel centre: burning the polygons again gives the same mask.
    again = tmp_path / "again.tif"
    result = invoke("rasterize", atlanta_image, out, "-o", again, "--class-field", "class")
    assert result.exit_code == 0, result.output
    with rasterio.open(atlanta_mask) as a, rasterio.open(again) as b:
        np.testing.assert_array_equal(a.read(1), b.read(1))


def test_pixel_edges_are_exact(tmp_path, atlanta_mask):
    vectorize_mask(atlanta_mask, tmp_path / "edges.geojson", smooth=False, dst_crs="raster")
    collection, geoms = _load(tmp_path / "edges.geojson")
    areas = np.array([f["properties"]["area_m2"] for f in collection["features"]])
    np.testing.assert_allclose(areas, shapely.area(geoms), atol=1e-3)
    np.testing.assert_allclose(areas / PIXEL_AREA, np.round(areas / PIXEL_AREA), atol=1e-6)  # whole pixels
    with rasterio.open(atlanta_mask) as src:
        assert areas.sum() == pytest.approx((src.read(1) == 1).sum() * PIXEL_AREA)


@pytest.mark.parametrize("block", [128, 100])
def test_small_blocks_give_whole_objects(tmp_path, atlanta_mask, block):
    vectorize_mask(atlanta_mask, tmp_path / "one.geojson", block=1024, dst_crs="raster")
    n = vectorize_mask(atlanta_mask, tmp_path / "many.geojson", block=block, dst_crs="raster")
    _, one = _load(tmp_path / "one.geojson")
    _, many = _load(tmp_path / "many.geojson")
    assert n == len(one) == len(many) == 33
    # the test is not vacuous: some buildings cross the window edges
    cols = (shapely.bounds(one)[:, [0, 2]] - 733601.0) / 0.5
    assert ((cols[:, 0] // block) != ((cols[:, 1] - 1) // block)).sum() >= 3
    key = np.lexsort(shapely.bounds(one).T[::-1])
    key_many = np.lexsort(shapely.bounds(many).T[::-1])
    assert shapely.equals(one[key], many[key_many]).all()
    np.testing.assert_allclose(shapely.area(one[key]), shapely.area(many[key_many]))


def test_min_area_drops_small_polygons(invoke, tmp_path, atlanta_mask):
    invoke("vectorize", atlanta_mask, "-o", tmp_path / "all.geojson")
    result = invoke("vectorize", atlanta_mask, "-o", tmp_path / "big.geojson", "--min-area", 100)
    assert result.exit_code == 0, result.output
    every, _ = _load(tmp_path / "all.geojson")
    big, _ = _load(tmp_path / "big.geojson")
    areas = [f["properties"]["area_m2"] for f in every["features"]]
    kept = [f["properties"]["area_m2"] for f in big["features"]]
    assert sorted(kept) == sorted(a for a in areas if a >= 100)
    assert 0 < len(kept) < len(areas)


@pytest.mark.parametrize("crs", [[], ["--crs", "EPSG:4326"]])
def test_geojson_is_lon_lat_by_default(invoke, tmp_path, atlanta_mask, crs):
    invoke("vectorize", atlanta_mask, "-o", tmp_path / "utm.geojson", "--crs", "raster")
    result = invoke("vectorize", atlanta_mask, "-o", tmp_path / "ll.geojson", *crs)
    assert result.exit_code == 0, result.output
    utm, _ = _load(tmp_path / "utm.geojson")
    lonlat, geoms = _load(tmp_path / "ll.geojson")
    assert "crs" not in lonlat  # RFC 7946: EPSG:4326 is implied
    west, south, east, north = shapely.total_bounds(geoms)
    assert -84.49 < west < east < -84.47 and 33.63 < south < north < 33.65  # Atlanta, lon/lat order
    # area_m2 is measured before reprojection
    assert [f["properties"]["area_m2"] for f in lonlat["features"]] == \
        [f["properties"]["area_m2"] for f in utm["features"]]


def test_geopackage_keeps_the_mask_crs_and_sequences_are_lon_lat(invoke, tmp_path, atlanta_mask):
    assert invoke("vectorize", atlanta_mask, "-o", tmp_path / "b.gpkg").exit_code == 0
    features = read_features(tmp_path / "b.gpkg")
    assert features.crs.to_epsg() == 32616 and len(features) == 33
    assert invoke("vectorize", atlanta_mask, "-o", tmp_path / "b.geojsonl").exit_code == 0
    lines = (tmp_path / "b.geojsonl").read_text().splitlines()
    assert len(lines) == 33 and all(json.loads(line)["type"] == "Feature" for line in lines)
    result = invoke("vectorize", atlanta_mask, "-o", tmp_path / "c.geojsonl", "--crs", "raster")
    assert result.exit_code == 2 and "WGS 84" in result.output and not (tmp_path / "c.geojsonl").exists()


def test_simplify_reduces_vertices_keeps_area(tmp_path, atlanta_mask):
    vectorize_mask(atlanta_mask, tmp_path / "raw.geojson", dst_crs="raster")
    vectorize_mask(atlanta_mask, tmp_path / "smooth.geojson", simplify=0.5, dst_crs="raster")
    _, raw = _load(tmp_path / "raw.geojson")
    _, smooth = _load(tmp_path / "smooth.geojson")
    assert shapely.get_num_coordinates(smooth).sum() < 0.3 * shapely.get_num_coordinates(raw).sum()
    assert shapely.is_valid(smooth).all()
    assert abs(shapely.area(smooth).sum() / shapely.area(raw).sum() - 1) < 0.02


def test_multiclass_mask_ignores_unlabelled(invoke, tmp_path, nc_image, nc_labels):
    mask = tmp_path / "nc.tif"
    invoke("rasterize", nc_image, nc_labels, "-o", mask, "--class-field", "label", "--ignore-unlabelled")
    n = vectorize_mask(mask, tmp_path / "nc.geojson", block=128, smooth=False)
    collection, _ = _load(tmp_path / "nc.geojson")
    assert n == len(collection["features"]) > 0
    with rasterio.open(mask) as src:
        data = src.read(1)
    for value, name in enumerate(["agriculture", "developed", "forest", "herbaceous", "sediment", "shrubland",
                                  "water"], start=1):
        area = sum(f["properties"]["area_m2"] for f in collection["features"] if f["properties"]["class"] == name)
        assert area == pytest.approx((data == value).sum() * 28.5**2)
    assert {f["properties"]["value"] for f in collection["features"]} == set(range(1, 8))  # never 255


def test_smoothed_classes_still_tile(invoke, tmp_path, nc_image, nc_labels):
    mask = tmp_path / "nc.tif"
    invoke("rasterize", nc_image, nc_labels, "-o", mask, "--class-field", "label", "--ignore-unlabelled")
    vectorize_mask(mask, tmp_path / "edges.geojson", smooth=False, dst_crs="raster")
    vectorize_mask(mask, tmp_path / "smooth.geojson", dst_crs="raster")
    _, edges = _load(tmp_path / "edges.geojson")
    _, smooth = _load(tmp_path / "smooth.geojson")
    assert len(smooth) == len(edges) and shapely.is_valid(smooth).all()
    # neighbouring classes cut their shared corners alike, so they never overlap; the total area moves < 2 %
    assert shapely.area(shapely.union_all(smooth)) == pytest.approx(shapely.area(smooth).sum(), rel=1e-9)
    assert shapely.area(smooth).sum() == pytest.approx(shapely.area(edges).sum(), rel=0.02)


def test_untagged_geographic_mask(tmp_path):
    """No classes tag: classes are named by value and 0 is kept; areas of a lon/lat mask are in m²."""
    mask = tmp_path / "ll.tif"
    data = np.zeros((40, 40), dtype=np.uint8)
    data[10:30, 5:25] = 3
    profile = {"driver": "GTiff", "width": 40, "height": 40, "count": 1, "dtype": "uint8", "crs": "EPSG:4326",
               "transform": from_origin(10.0, 45.002, 0.0001, 0.0001)}
    with rasterio.open(mask, "w", **profile) as dst:
        dst.write(data, 1)
    vectorize_mask(mask, tmp_path / "ll.geojson", block=16)
    collection, _ = _load(tmp_path / "ll.geojson")
    props = {f["properties"]["class"]: f["properties"] for f in collection["features"]}
    assert set(props) == {"0", "3"}
    expected = (20 * 0.0001 * 111_320) * (20 * 0.0001 * 111_320 * np.cos(np.radians(45.0)))
    assert props["3"]["area_m2"] == pytest.approx(expected, rel=0.01)


def test_refuses_to_overwrite(invoke, tmp_path, atlanta_mask):
    out = tmp_path / "b.geojson"
    assert invoke("vectorize", atlanta_mask, "-o", out).exit_code == 0
    result = invoke("vectorize", atlanta_mask, "-o", out)
    assert result.exit_code == 2
    assert "--overwrite" in result.output
    assert invoke("vectorize", atlanta_mask, "-o", out, "--overwrite").exit_code == 0


def test_missing_mask_exits_2(invoke, tmp_path):
    result = invoke("vectorize", tmp_path / "nope.tif", "-o", tmp_path / "out.geojson")
    assert result.exit_code == 2
    assert "raster not found" in result.output and "nope.tif" in result.output
    assert not (tmp_path / "out.geojson").exists()


def test_rejects_image_as_mask(invoke, tmp_path, nc_image):
    result = invoke("vectorize", nc_image, "-o", tmp_path / "out.geojson")
    assert result.exit_code == 2
    assert "class mask" in result.output


@pytest.fixture
def brightness_classes(tmp_path, atlanta_image) -> Path:
    """A noisy 3-class mask of 384 x 384 px of the real Atlanta image (brightness cut at its 35/70/90 % quantiles):
    hundreds of objects, some with holes, many crossing 64 px windows."""
    with rasterio.open(atlanta_image) as src:
        window = rasterio.windows.Window(0, 0, 384, 384)
        data = src.read(1, window=window).astype(np.float32)
        profile = src.profile | {"width": 384, "height": 384, "transform": src.window_transform(window)}
    classes = np.digitize(data, np.quantile(data, [0.35, 0.7, 0.9])).astype(np.uint8)
    classes = np.where(np.roll(classes, 1, 0) == np.roll(classes, -1, 0), np.roll(classes, 1, 0), classes)  # denoise
    out = tmp_path / "classes.tif"
    with rasterio.open(out, "w", **(profile | {"dtype": "uint8", "nodata": None})) as dst:
        dst.write(classes, 1)
        dst.update_tags(classes=classes_tag(ClassTable.from_names(["dark", "mid", "bright"], background=True)))
    return out


def _by_position(features) -> tuple[np.ndarray, np.ndarray]:
    values = np.array([p["value"] for p in features.properties])
    order = np.lexsort((*shapely.bounds(features.geometries).T[::-1], values))
    return features.geometries[order], values[order]


@pytest.mark.parametrize("smooth", [False, True])
def test_parallel_windows_give_the_serial_polygons(brightness_classes, smooth):
    whole, whole_values = _by_position(mask_features(brightness_classes, block=1024, smooth=smooth))  # one window
    parts, part_values = _by_position(mask_features(brightness_classes, block=64, smooth=smooth, workers=2))
    assert len(whole) == len(parts) > 300
    np.testing.assert_array_equal(whole_values, part_values)
    np.testing.assert_allclose(shapely.area(parts), shapely.area(whole), rtol=1e-12)
    assert shapely.equals_exact(shapely.normalize(parts), shapely.normalize(whole), 0).all()  # vertex for vertex
    assert shapely.is_valid(parts).all()
    # not vacuous: objects with holes cross the window edges (merged), and all three classes take part
    bounds = (shapely.bounds(whole) - shapely.bounds(whole)[:, :1].min()) / 0.5
    crossing = (bounds[:, 0] // 64) != ((bounds[:, 2] - 1) // 64)
    assert (crossing & (shapely.get_num_interior_rings(whole) > 0)).sum() >= 10
    assert set(whole_values[crossing]) == {1, 2, 3}
