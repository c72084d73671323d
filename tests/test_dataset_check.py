"""dataset check: health report of image + labels on the Atlanta buildings and the NC land cover."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import rasterio
from rasterio.windows import Window

from landsight.dataset_check import check_dataset
from landsight.imagery.windows import blocked_split, count_train_positions, train_positions
from landsight.labels.classes import ClassTable
from landsight.labels.rasterize import rasterize_labels
from landsight.report.schema import read_report


def test_atlanta_report(invoke, tmp_path, atlanta_image, atlanta_labels):
    out = tmp_path / "check.json"
    result = invoke("dataset", "check", atlanta_image, atlanta_labels, "--class-name", "building", "--json", out)
    assert result.exit_code == 0, result.output
    assert "EPSG:32616" in result.output and "class building" in result.output
    report = read_report(out, "dataset-check")
    table = ClassTable.from_names(["building"], background=True)
    counts = rasterize_labels(atlanta_image, atlanta_labels, tmp_path / "mask.tif", table)
    assert report["class_pixels"] == {"background": counts["background"], "building": counts["building"]}
    assert report["image_crs"] == report["labels_crs"] == "EPSG:32616"
    assert report["image_resolution"] == [0.5, 0.5] and report["image_size"] == [600, 900]
    assert report["features"] == 32 and report["label_area_inside"] == pytest.approx(1.0)
    assert report["label_coverage"] == pytest.approx(counts["building"] / 540_000, abs=0.002)
    assert report["label_coverage"] < report["bbox_coverage"] < 1
    assert report["nodata_fraction"] == 0.0 and report["ignored_pixels"] == 0
    weights, pixels = report["class_weights"], report["class_pixels"]
    assert weights["building"] == pytest.approx((540_000 / (2 * pixels["building"])) ** 0.5, abs=1e-5)
    assert weights["background"] == pytest.approx((540_000 / (2 * pixels["background"])) ** 0.5, abs=1e-5)
    split = blocked_split(600, 900, 256, 0.2)
    assert report["val_chips"] == len(split.val) == 1
    assert report["train_chips"] == 2 * 3 - 1
    assert report["train_positions"] == len(train_positions(split))
    assert report["warnings"] == []


def test_nc_landcover_report(invoke, tmp_path, nc_image, nc_labels):
    out = tmp_path / "nc.json"
    result = invoke("dataset", "check", nc_image, nc_labels, "--class-field", "label", "--ignore-unlabelled",
                    "--chip-size", 128, "--json", out)
    assert result.exit_code == 0, result.output
    report = read_report(out, "dataset-check")
    assert len(report["class_pixels"]) == 7 and min(report["class_pixels"].values()) > 0
    assert sum(report["class_pixels"].values()) + report["ignored_pixels"] == 489 * 443
    assert report["labels_crs"] == "EPSG:3358"  # the file's own CRS, not the image's
    assert report["image_resolution"] == [28.5, 28.5]
    assert 0.95 < report["label_area_inside"] < 1.0  # a few polygons reach past the image
    assert 0.01 < report["label_coverage"] < report["bbox_coverage"]
    weights = report["class_weights"]
    assert weights["agriculture"] == max(weights.values()) and weights["forest"] == min(weights.values())
    total = sum(report["class_pixels"].values())
    assert weights == {k: pytest.approx((total / (7 * n)) ** 0.5, abs=1e-5) for k, n in report["class_pixels"].items()}
    assert report["val_chips"] >= 1


def test_warnings(invoke, tmp_path, nc_image, nc_labels, atlanta_image, atlanta_labels):
    # the default 256 px chips leave no validation block in a 489x443 image
    result = invoke("dataset", "check", nc_image, nc_labels, "--class-field", "label", "--ignore-unlabelled")
    assert result.exit_code == 0 and "no validation chip" in result.output
    # a class without pixels and labels covering < 1 % of the image
    one = json.loads(atlanta_labels.read_text())
    one["features"] = one["features"][:1]
    one["features"][0]["properties"]["kind"] = "building"
    (tmp_path / "one.geojson").write_text(json.dumps(one))
    config = tmp_path / "dataset.yaml"
    config.write_text("classes:\n  - {value: 0, name: background}\n  - {value: 1, name: building}\n"
                      "  - {value: 2, name: road}\nclass_field: kind\n")
    report = check_dataset(atlanta_image, tmp_path / "one.geojson",
                           ClassTable.from_names(["building", "road"], background=True), "kind")
    assert any("road" in w and "no pixels" in w for w in report.warnings)
    assert any("cover only" in w for w in report.warnings)
    result = invoke("dataset", "check", atlanta_image, tmp_path / "one.geojson", "--config", config)
    assert result.exit_code == 0, result.output
    assert "'road' has no pixels" in result.output


def test_nodata_warning(tmp_path, atlanta_image, atlanta_labels):
    with rasterio.open(atlanta_image) as src:
        profile, data = src.profile, src.read()
    data[:, :, :400] = 0  # nodata = 0: two thirds of the image
    holes = tmp_path / "holes.tif"
    with rasterio.open(holes, "w", **profile) as dst:
        dst.write(data)
    report = check_dataset(holes, atlanta_labels, ClassTable.from_names(["building"], background=True))
    assert report.nodata_fraction == pytest.approx(400 / 600, abs=1e-6)
    assert any("nodata" in w for w in report.warnings)


def test_errors_exit_2(invoke, tmp_path, atlanta_image, atlanta_labels, nc_labels):
    result = invoke("dataset", "check", atlanta_image, nc_labels, "--class-field", "label")
    assert result.exit_code == 2 and "overlaps the image" in result.output
    empty = tmp_path / "empty.geojson"
    empty.write_text('{"type": "FeatureCollection", "features": []}')
    result = invoke("dataset", "check", atlanta_image, empty)
    assert result.exit_code == 2 and "no polygon features" in result.output
    result = invoke("dataset", "check", atlanta_image, atlanta_labels, "--class-field", "landcover")
    assert result.exit_code == 2 and "'landcover' not found" in result.output
    result = invoke("dataset", "check", atlanta_image, atlanta_labels, "--chip-size", 1024)
    assert result.exit_code == 2 and "--chip-size" in result.output


def test_json_refuses_to_overwrite(invoke, tmp_path, atlanta_image, atlanta_labels):
    out = tmp_path / "check.json"
    out.write_text("{}")
    result = invoke("dataset", "check", atlanta_image, atlanta_labels, "--json", out)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert out.read_text() == "{}"
    assert invoke("dataset", "check", atlanta_image, atlanta_labels, "--json", out, "--overwrite").exit_code == 0
    assert json.loads(out.read_text())["features"] == 32


def sparse_copy(source, path, size):
    """`source` in the top-left corner of a `size` px square sparse GeoTIFF on its grid: only its blocks hold data."""
    with rasterio.open(source) as src:
        profile, data = src.profile, src.read()
    profile.update(width=size, height=size, sparse_ok=True, BIGTIFF="YES")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, window=Window(0, 0, data.shape[2], data.shape[1]))
    return path


# VmHWM is this process's own peak: ru_maxrss would also count the pytest process it was forked from (Linux keeps
# the high-water mark across exec), which grows with every test before.
RUN_WITH_PEAK_MEMORY = ("import atexit, re, sys; atexit.register(lambda: print('peak_rss_kb', re.search("
                        "r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1], file=sys.stderr)); "
                        "from landsight.cli.main import cli; cli()")


def test_huge_sparse_raster(tmp_path, atlanta_image, atlanta_labels):
    """A 100,000 x 100,000 px header holding only the Atlanta sample's blocks: the check once compared every chip
    position with every validation block (never finished) and decoded every block (its cache grew to GBs)."""
    big = sparse_copy(atlanta_image, tmp_path / "big.tif", 100_000)
    assert big.stat().st_size < 5_000_000
    out = tmp_path / "check.json"
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", RUN_WITH_PEAK_MEMORY, "dataset", "check", str(big),
                             str(atlanta_labels), "--class-name", "building", "--json", str(out)],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 120
    assert int(result.stderr.split("peak_rss_kb")[1].split()[0]) < 600_000, result.stderr
    assert "100,000 x 100,000 px (10,000.0 Mpx), 9,604 window(s)" in " ".join((result.stdout + result.stderr).split())
    report = read_report(out, "dataset-check")
    small = check_dataset(atlanta_image, atlanta_labels, ClassTable.from_names(["building"], background=True))
    building = small.class_pixels["building"]
    assert report["class_pixels"] == {"background": 100_000 ** 2 - building, "building": building}
    assert report["nodata_fraction"] == round(1 - 600 * 900 / 100_000 ** 2, 6)
    split = blocked_split(100_000, 100_000, 256, 0.2)
    assert report["val_chips"] == len(split.val) == 30_420
    assert report["train_positions"] == count_train_positions(split)

