"""`landsight classify train | report | predict` through the CLI on real Landsat-8 chips."""

import csv
import json
import shutil

import numpy as np
import rasterio

from landsight.models.model_file import load_model_file
from landsight.report.schema import HEADER_KEYS, read_report
from tests.classify.conftest import BIGEARTHNET, L8, run


def test_training_on_class_folders_writes_model_split_and_report(folder_model):
    model = load_model_file(folder_model, task="classification")
    assert model.arch == "classifier" and model.encoder == "resnet18" and model.chip_size == 32
    assert model.classes.names == ["clear", "cloudy"] and model.bands.count == 4
    assert model.options["normalization_mode"] == "dataset" and not model.options["multi_label"]
    assert len(model.options["input_stats"]["mean"]) == 4
    stem = folder_model.with_suffix("")
    for suffix in ("report.html", "report.json", "confusion.png", "pr.png", "errors.png", "candidates.png",
                   "split.json", "history.csv"):
        assert stem.with_name(f"{stem.name}-{suffix}").stat().st_size > 100, suffix
    report = read_report(stem.with_name(f"{stem.name}-report.json"), "classifier")
    assert report["split"]["blocked"]  # GeoTIFF chips carry their georeference
    assert sum(report["split"]["sizes"].values()) == report["data"]["chips"] - report["split"]["dropped_overlapping"]
    assert report["candidates"][0]["backbone"] == "resnet18" and report["chosen"]["epochs"] <= 2
    assert set(report["test"]["per_class"]) == {"clear", "cloudy"}
    assert len(report["test"]["pr_at_thresholds"]["cloudy"]) == 9 and report["test"]["confusion_matrix"]
    assert 0 <= report["similarity"]["precision_at_k"] <= 1
    baseline = report["baseline"]
    assert set(baseline["test"]["per_class"]) == {"clear", "cloudy"}
    assert baseline["test"]["chips"] == report["test"]["chips"] and baseline["penalty"] > 0
    html = stem.with_name(f"{stem.name}-report.html").read_text()
    assert html.count("data:image/png;base64") >= 4 and "Candidates tried" in html and "Worst errors" in html
    assert "Baseline" in html and "logistic regression on per-band chip statistics" in html
    split = json.loads(stem.with_name(f"{stem.name}-split.json").read_text())
    assert not set(split["train"]) & set(split["test"])


def test_report_reopens_and_rebuilds_from_the_model_file(folder_model, tmp_path):
    result = run("classify", "report", folder_model)
    assert result.exit_code == 0 and "chosen resnet18" in result.output and "report.html" in result.output
    assert "baseline (logistic regression on band statistics): test macro F1" in result.output
    alone = tmp_path / "copy.pt"
    shutil.copy(folder_model, alone)
    result = run("classify", "report", alone, "--json")
    assert result.exit_code == 0 and json.loads(result.output)["chosen"]["backbone"] == "resnet18"
    assert (tmp_path / "copy-report.html").exists() and (tmp_path / "copy-confusion.png").exists()
    assert "Test macro F1" in (tmp_path / "copy-report.html").read_text()  # the baseline travels in the model


def test_report_refuses_an_old_foreign_or_newer_report_json(folder_model, tmp_path):
    """`classify report` reads MODEL-report.json through read_report: exit 2 naming the file and the fix."""
    model = tmp_path / "m.pt"
    shutil.copy(folder_model, model)
    written = read_report(folder_model.with_name(f"{folder_model.stem}-report.json"), "classifier")
    body = {k: v for k, v in written.items() if k not in HEADER_KEYS}
    cases = {"old": (body, "no landsight report header"),
             "foreign": ({**written, "schema": "landsight-compare"}, "'landsight-compare' report"),
             "newer": ({**written, "schema_version": 99}, "schema_version 99")}
    for data, expected in cases.values():
        (tmp_path / "m-report.json").write_text(json.dumps(data))
        result = run("classify", "report", model)
        assert result.exit_code == 2, result.output
        assert "m-report.json" in result.output and expected in result.output
        assert "delete it to rebuild it from the model file" in result.output


def test_predict_chips_to_csv_and_geojson(folder_model, chip_dir, tmp_path):
    out = tmp_path / "pred.csv"
    result = run("classify", "predict", folder_model, chip_dir, "-o", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == len(list(chip_dir.rglob("*.tif")))
    assert {r["class"] for r in rows} <= {"clear", "cloudy"} and {r["label"] for r in rows} == {"clear", "cloudy"}
    assert all(abs(float(r["p_clear"]) + float(r["p_cloudy"]) - 1) < 1e-3 for r in rows)
    geo = tmp_path / "pred.geojson"
    assert run("classify", "predict", folder_model, chip_dir, "-o", geo).exit_code == 0
    features = json.loads(geo.read_text())["features"]
    assert len(features) == len(rows) and features[0]["geometry"]["type"] == "Polygon"
    assert -90 < features[0]["geometry"]["coordinates"][0][0][0] < -80  # WGS 84 longitudes of Alabama
    assert run("classify", "predict", folder_model, chip_dir, "-o", geo).exit_code == 2  # no silent overwrite


def test_predict_a_raster_per_window_to_a_class_raster(folder_model, tmp_path):
    out = tmp_path / "classes.tif"
    result = run("classify", "predict", folder_model, L8, "-o", out)
    assert result.exit_code == 0, result.output
    with rasterio.open(out) as dst, rasterio.open(L8) as src:
        assert (dst.width, dst.height) == (16, 16) and dst.crs == src.crs
        assert dst.transform.a == 32 * src.transform.a and dst.bounds == src.bounds
        values = dst.read(1)
        assert set(np.unique(values)) <= {1, 2} and json.loads(dst.tags()["classes"])[1]["name"] == "cloudy"


def test_multi_label_training_on_bigearthnet_patches(tmp_path):
    out = tmp_path / "ben.pt"
    result = run("classify", "train", BIGEARTHNET, "-o", out, "--chip-size", "32", "--backbones",
                 "tf_efficientnet_lite0", "--budget", "60s", "--max-epochs", "1", "--no-lr-search",
                 "--normalization", "per-image")
    assert result.exit_code == 0, result.output
    model = load_model_file(out, task="classification")
    assert model.options["multi_label"] and len(model.classes) == 10
    assert model.options["normalization_mode"] == "per-image"
    report = json.loads((tmp_path / "ben-report.json").read_text())
    assert report["multi_label"] and report["test"]["confusion_matrix"] is None
    assert "exact_match" in report["test"] and "Water bodies" in report["test"]["per_class"]


def test_inputs_unlike_the_training_data_warn(folder_model, chip_dir, tmp_path):
    """Reflectance-scaled chips fed to a model trained on DN: predictions still come, with a warning."""
    for i, path in enumerate(sorted((chip_dir / "clear").glob("*.tif"))[:3]):
        with rasterio.open(path) as src:
            profile, data = src.profile, src.read().astype("float32") / 10000
        with rasterio.open(tmp_path / f"r{i}.tif", "w", **{**profile, "dtype": "float32"}) as dst:
            dst.write(data)
    result = run("classify", "predict", folder_model, *sorted(tmp_path.glob("r*.tif")))
    assert result.exit_code == 0
    text = " ".join(result.output.split())  # log lines are wrapped
    assert "far outside the training data" in text and "DN vs reflectance" in text


def test_auto_keeps_the_baseline_when_it_wins_on_validation(chip_dir, tmp_path):
    """A one-epoch network loses to the chip-statistics baseline on validation: the MODEL file holds the baseline,
    which predicts like any classifier, says so in the output and report, and is refused by ONNX export."""
    out = tmp_path / "auto.pt"
    result = run("classify", "train", chip_dir, "--backbones", "resnet18", "-o", out, "--budget", "5m",
                 "--max-epochs", "1", "--no-lr-search")
    assert result.exit_code == 0, result.output
    report = read_report(tmp_path / "auto-report.json", "classifier")
    assert report["kept"] == "baseline" and "kept the baseline" in result.output
    assert report["baseline"]["val_macro_f1"] > report["chosen"]["val_macro_f1"]
    assert report["test"]["mean_f1"] == report["baseline"]["test"]["mean_f1"] and "network_test" in report
    assert load_model_file(out, task="classification").arch == "chip-statistics"
    assert "so the MODEL file holds the baseline" in (tmp_path / "auto-report.html").read_text()
    predictions = tmp_path / "p.csv"
    assert run("classify", "predict", out, chip_dir, "-o", predictions).exit_code == 0
    with open(predictions) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == report["data"]["chips"] and {r["label"] for r in rows} <= {"clear", "cloudy"}
    refused = run("export", out, "--onnx", tmp_path / "auto.onnx")
    assert refused.exit_code == 2 and "chip-statistics baseline" in refused.output
