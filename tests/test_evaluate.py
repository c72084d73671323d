"""evaluate: predicted masks against vector or raster labels, on the Atlanta buildings and NC land cover."""

from __future__ import annotations

import json

import pytest
import rasterio

from landsight.evaluate import evaluate_prediction
from landsight.labels.classes import ClassTable
from landsight.labels.rasterize import rasterize_labels
from landsight.report.schema import read_report

NC_CLASSES = ["agriculture", "developed", "forest", "herbaceous", "sediment", "shrubland", "water"]




def _metrics(report_dir):
    """metrics.json, read through the checked reader (its header says landsight-evaluation, schema 1)."""
    return read_report(report_dir / "metrics.json", "evaluation")


def test_same_labels_score_one(invoke, tmp_path, atlanta_mask, atlanta_labels):
    out = tmp_path / "report"
    result = invoke("evaluate", atlanta_mask, atlanta_labels, "-o", out)
    assert result.exit_code == 0, result.output
    assert "building" in result.output and "1.000" in result.output  # the rich table
    metrics = _metrics(out)
    assert metrics["classes"] == ["background", "building"]
    assert metrics["per_class"]["building"]["iou"] == 1.0 and metrics["per_class"]["background"]["iou"] == 1.0
    assert metrics["mean_mcc"] == 1.0 and metrics["accuracy"] == 1.0
    assert metrics["pixels"] == 600 * 900
    assert metrics["inputs"]["labels"] == str(atlanta_labels) and metrics["bounds"] is None
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_erased_buildings_give_hand_computed_iou(tmp_path, atlanta_image, atlanta_labels, atlanta_mask):
    """Predict only every other building: building IoU = kept / all building pixels, precision stays 1."""
    collection = json.loads(atlanta_labels.read_text())
    collection["features"] = collection["features"][::2]
    half = tmp_path / "half.geojson"
    half.write_text(json.dumps(collection))
    table = ClassTable.from_names(["building"], background=True)
    full = rasterize_labels(atlanta_image, atlanta_labels, tmp_path / "full.tif", table)
    kept = rasterize_labels(atlanta_image, half, tmp_path / "pred.tif", table)
    with rasterio.open(tmp_path / "full.tif") as f, rasterio.open(tmp_path / "pred.tif") as p:
        assert not ((p.read(1) == 1) & (f.read(1) == 0)).any()  # predicted buildings are a subset of the truth
    for labels in (atlanta_labels, tmp_path / "full.tif"):  # vector labels, or an aligned mask
        report = evaluate_prediction(tmp_path / "pred.tif", labels, tmp_path / f"report-{labels.suffix[1:]}")
        building, background = report.per_class["building"], report.per_class["background"]
        assert building["iou"] == pytest.approx(kept["building"] / full["building"], abs=1e-6)
        assert building["recall"] == pytest.approx(kept["building"] / full["building"], abs=1e-6)
        assert building["precision"] == 1.0
        assert background["iou"] == pytest.approx(full["background"] / kept["background"], abs=1e-6)
        assert report.confusion_matrix == [[full["background"], 0],
                                              [full["building"] - kept["building"], kept["building"]]]
    assert 0.3 < kept["building"] / full["building"] < 0.7


def test_nc_landcover_seven_classes(invoke, tmp_path, nc_image, nc_labels):
    """Sparse labels, 7 classes; forest predicted as shrubland scores forest 0 and dilutes shrubland's precision."""
    pred = tmp_path / "pred.tif"
    invoke("rasterize", nc_image, nc_labels, "-o", pred, "--class-field", "label", "--ignore-unlabelled")
    with rasterio.open(pred, "r+") as dst:
        data = dst.read(1)
        counts = {name: int((data == v).sum()) for v, name in enumerate(NC_CLASSES, start=1)}
        data[data == 3] = 6
        dst.write(data, 1)
    out = tmp_path / "report"
    result = invoke("evaluate", pred, nc_labels, "-o", out, "--class-field", "label", "--ignore-unlabelled")
    assert result.exit_code == 0, result.output
    metrics = _metrics(out)
    assert metrics["classes"] == NC_CLASSES
    assert metrics["pixels"] == sum(counts.values()) == 2264  # unlabelled pixels are not scored
    assert metrics["per_class"]["forest"]["iou"] == 0.0 and metrics["per_class"]["forest"]["recall"] == 0.0
    shrub = metrics["per_class"]["shrubland"]
    assert shrub["precision"] == pytest.approx(counts["shrubland"] / (counts["shrubland"] + counts["forest"]),
                                               abs=1e-6)
    assert shrub["recall"] == 1.0
    for name in ("agriculture", "developed", "herbaceous", "sediment", "water"):
        assert metrics["per_class"][name]["iou"] == 1.0
    assert metrics["accuracy"] == pytest.approx(1 - counts["forest"] / 2264, abs=1e-6)


def test_bounds_restrict_to_eastern_third(invoke, tmp_path, atlanta_mask, atlanta_labels):
    with rasterio.open(atlanta_mask) as src:
        left, bottom, right, top = src.bounds
        east = left + 2 * (right - left) / 3
        buildings_east = int((src.read(1)[:, 400:] == 1).sum())
    out = tmp_path / "east"
    result = invoke("evaluate", atlanta_mask, atlanta_labels, "-o", out, "--bounds", east, bottom, right, top)
    assert result.exit_code == 0, result.output
    metrics = _metrics(out)
    assert metrics["pixels"] == 200 * 900
    assert metrics["window"] == {"col_off": 400, "row_off": 0, "width": 200, "height": 900}
    assert metrics["per_class"]["building"]["support"] == buildings_east
    assert metrics["bounds"] == pytest.approx([east, bottom, right, top])


def test_bounds_outside_exit_2(invoke, tmp_path, atlanta_mask, atlanta_labels):
    result = invoke("evaluate", atlanta_mask, atlanta_labels, "-o", tmp_path / "r", "--bounds", 0, 0, 10, 10)
    assert result.exit_code == 2
    assert "do not overlap" in result.output


def test_unknown_class_names_exit_2(invoke, tmp_path, atlanta_mask, atlanta_labels):
    result = invoke("evaluate", atlanta_mask, atlanta_labels, "-o", tmp_path / "r", "--class-field", "building")
    assert result.exit_code == 2
    assert "'yes'" in result.output and "not classes" in result.output
    assert not (tmp_path / "r").exists()


def test_misaligned_mask_labels_exit_2(invoke, tmp_path, atlanta_mask, nc_image, nc_labels):
    nc_mask = tmp_path / "nc.tif"
    invoke("rasterize", nc_image, nc_labels, "-o", nc_mask, "--class-field", "label", "--ignore-unlabelled")
    result = invoke("evaluate", atlanta_mask, nc_mask, "-o", tmp_path / "r")
    assert result.exit_code == 2
    assert "not aligned" in result.output and "landsight rasterize" in result.output


def test_refuses_to_overwrite(invoke, tmp_path, atlanta_mask, atlanta_labels):
    out = tmp_path / "report"
    assert invoke("evaluate", atlanta_mask, atlanta_labels, "-o", out).exit_code == 0
    result = invoke("evaluate", atlanta_mask, atlanta_labels, "-o", out)
    assert result.exit_code == 2 and "--overwrite" in result.output
    assert invoke("evaluate", atlanta_mask, atlanta_labels, "-o", out, "--overwrite").exit_code == 0
    assert sorted(p.name for p in out.iterdir()) == [".landsight-output", "confusion_matrix.png", "metrics.json"]


def test_untagged_prediction_needs_config(invoke, tmp_path, atlanta_mask, atlanta_labels):
    with rasterio.open(atlanta_mask) as src:
        profile, data = src.profile, src.read()
    bare = tmp_path / "bare.tif"
    with rasterio.open(bare, "w", **profile) as dst:
        dst.write(data)
    result = invoke("evaluate", bare, atlanta_labels, "-o", tmp_path / "r")
    assert result.exit_code == 2 and "no 'classes' tag" in result.output
    config = tmp_path / "dataset.yaml"
    config.write_text("classes:\n  - {value: 0, name: background}\n  - {value: 1, name: building}\n")
    result = invoke("evaluate", bare, atlanta_labels, "-o", tmp_path / "r", "--config", config)
    assert result.exit_code == 0, result.output
    assert _metrics(tmp_path / "r")["per_class"]["building"]["iou"] == 1.0


def test_prediction_nodata_is_not_scored(tmp_path, atlanta_mask, atlanta_labels):
    with rasterio.open(atlanta_mask, "r+") as dst:
        data = dst.read(1)
        data[:100] = 255  # no prediction in the top 100 rows
        dst.write(data, 1)
    report = evaluate_prediction(atlanta_mask, atlanta_labels, tmp_path / "r", block=256)
    assert report.unpredicted_pixels == 100 * 600
    assert report.pixels == 800 * 600
    assert report.per_class["building"]["iou"] == 1.0
