"""Rasterizing real OpenStreetMap buildings and land-cover polygons onto real imagery."""

import json

import numpy as np
import pytest
import rasterio
import shapely

from landsight.errors import LabelError
from landsight.labels.classes import IGNORE_VALUE
from landsight.labels.vectors import read_features


def test_mask_matches_polygon_area_within_one_percent(invoke, tmp_path, atlanta_image, atlanta_labels):
    out = tmp_path / "mask.tif"
    result = invoke("rasterize", atlanta_image, atlanta_labels, "-o", out, "--class-name", "building")
    assert result.exit_code == 0, result.output
    with rasterio.open(atlanta_image) as img, rasterio.open(out) as mask:
        assert (mask.width, mask.height, mask.transform, mask.crs) == (img.width, img.height, img.transform, img.crs)
        data = mask.read(1)
        pixel_area = abs(img.transform.a * img.transform.e)
        image_box = shapely.box(*img.bounds)
    features = read_features(atlanta_labels, mask.crs)
    polygon_area = shapely.area(shapely.intersection(features.geometries, image_box)).sum()
    burned_area = (data == 1).sum() * pixel_area
    assert abs(burned_area - polygon_area) / polygon_area < 0.01
    assert set(np.unique(data)) == {0, 1}


def test_sparse_labels_are_ignored_outside_polygons(invoke, tmp_path, nc_image, nc_labels):
    out = tmp_path / "nc.tif"
    result = invoke("rasterize", nc_image, nc_labels, "-o", out, "--class-field", "label", "--ignore-unlabelled")
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as mask:
        data = mask.read(1)
        classes = json.loads(mask.tags()["classes"])
    assert [c["name"] for c in classes] == ["agriculture", "developed", "forest", "herbaceous", "sediment",
                                            "shrubland", "water"]
    assert (data == IGNORE_VALUE).mean() > 0.9
    assert set(np.unique(data)) == {1, 2, 3, 4, 5, 6, 7, IGNORE_VALUE}


def test_all_touched_burns_more(invoke, tmp_path, atlanta_image, atlanta_labels):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    invoke("rasterize", atlanta_image, atlanta_labels, "-o", a)
    invoke("rasterize", atlanta_image, atlanta_labels, "-o", b, "--all-touched")
    with rasterio.open(a) as ra, rasterio.open(b) as rb:
        assert (rb.read(1) == 1).sum() > (ra.read(1) == 1).sum()


def test_refuses_to_overwrite_and_keeps_the_file(invoke, tmp_path, atlanta_image, atlanta_labels):
    out = tmp_path / "mask.tif"
    out.write_bytes(b"precious")
    result = invoke("rasterize", atlanta_image, atlanta_labels, "-o", out)
    assert result.exit_code == 2
    assert "--overwrite" in result.output
    assert out.read_bytes() == b"precious"
    assert invoke("rasterize", atlanta_image, atlanta_labels, "-o", out, "--overwrite").exit_code == 0
    assert list(tmp_path.iterdir()) == [out]


@pytest.mark.parametrize("case, message", [
    ("missing_image", "raster not found"),
    ("corrupt_image", "corrupt or truncated"),
    ("empty_labels", "no polygon features"),
    ("elsewhere_labels", "overlaps the image"),
    ("unknown_field", "label field 'nope' not found"),
])
def test_bad_input_exits_2_with_a_message(invoke, tmp_path, atlanta_image, atlanta_labels, case, message):
    image, labels, extra = atlanta_image, atlanta_labels, []
    if case == "missing_image":
        image = tmp_path / "nope.tif"
    elif case == "corrupt_image":
        image = tmp_path / "corrupt.tif"
        image.write_bytes(atlanta_image.read_bytes()[:2000])
    elif case == "empty_labels":
        labels = tmp_path / "empty.geojson"
        labels.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    elif case == "elsewhere_labels":
        labels = tmp_path / "elsewhere.geojson"
        labels.write_text(json.dumps({"type": "FeatureCollection", "features": [{
            "type": "Feature", "properties": {},
            "geometry": {"type": "Polygon", "coordinates": [[[2.0, 48.0], [2.1, 48.0], [2.1, 48.1], [2.0, 48.0]]]}}]}))
    elif case == "unknown_field":
        extra = ["--class-field", "nope"]
    out = tmp_path / "mask.tif"
    result = invoke("rasterize", image, labels, "-o", out, *extra)
    assert result.exit_code == 2
    assert message in result.output
    assert not out.exists()


def test_unknown_class_names_in_config_are_refused(invoke, tmp_path, nc_image, nc_labels):
    config = tmp_path / "dataset.yaml"
    config.write_text("class_field: label\nbackground: false\nclasses:\n  - {value: 1, name: forest}\n"
                      "  - {value: 2, name: water}\n")
    result = invoke("rasterize", nc_image, nc_labels, "-o", tmp_path / "m.tif", "--config", config,
                    "--ignore-unlabelled")
    assert result.exit_code == 2
    assert "not classes ['forest', 'water']" in result.output
    assert "developed" in result.output


def test_features_are_reprojected_to_the_image_crs(atlanta_labels):
    utm = read_features(atlanta_labels)
    lonlat = read_features(atlanta_labels, rasterio.crs.CRS.from_epsg(4326))
    assert utm.crs.to_epsg() == 32616 and lonlat.crs.to_epsg() == 4326
    west, south, east, north = shapely.total_bounds(lonlat.geometries)
    assert -84.7 < west < east < -84.0 and 33.6 < south < north < 33.8


def test_missing_label_file_raises():
    with pytest.raises(LabelError, match="label file not found"):
        read_features("/nonexistent/labels.geojson")
