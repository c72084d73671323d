"""The pixel baseline beside every segmentation run: a random forest stored as tensors, fitted on the training
pixels, scored on the validation chips, kept when it wins (`train --model auto`)."""

import csv
import json

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from landsight.config import TrainConfig
from landsight.imagery.bands import read_bands
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.models.model_file import load_model_file
from landsight.models.registry import PIXEL_FOREST
from landsight.train.baseline import PIXELS_PER_CLASS, fit_pixel_forest, sample_training_pixels, to_module
from landsight.train.prepare import prepare_training_data

NC = ["--class-field", "label", "--ignore-unlabelled", "--chip-size", "64"]


@pytest.fixture(scope="module")
def nc_data(tmp_path_factory):
    from tests.conftest import DATA

    labels = DATA / "nc-landcover" / "landcover-polygons.geojson"
    names = sorted({f["properties"]["label"] for f in json.loads(labels.read_text())["features"]})
    table = ClassTable.from_names(names, background=False)
    work = tmp_path_factory.mktemp("nc") / "work"
    return prepare_training_data([(str(DATA / "nc-landcover" / "landsat7-2000.tif"), str(labels))], work, table,
                                 "label", False, TrainConfig(chip_size=64, validation="blocks"))


def test_forest_module_matches_scikit_learn(nc_data):
    from sklearn.ensemble import RandomForestClassifier

    x, y = sample_training_pixels(nc_data, 64, seed=0)
    forest = RandomForestClassifier(n_estimators=10, max_depth=12, random_state=0).fit(x, y)
    module = to_module(forest, nc_data.bands.count, len(nc_data.classes))
    expected = np.zeros((len(x), len(nc_data.classes)))
    expected[:, forest.classes_] = forest.predict_proba(x)
    got = module._probabilities(torch.from_numpy(x).T).numpy()
    assert np.abs(got - expected).max() < 1e-6


def test_training_pixels_are_every_labelled_pixel_outside_validation(nc_data):
    _, y = sample_training_pixels(nc_data, 64, seed=0)
    assert max(nc_data.class_pixels) < PIXELS_PER_CLASS  # so nothing is subsampled here
    pair, split = nc_data.pairs[0], nc_data.splits[0]
    with rasterio.open(pair.image) as src, rasterio.open(pair.mask) as mask:
        whole = Window(0, 0, src.width, src.height)
        _, valid = read_bands(src, whole, nc_data.bands)
        channels = nc_data.classes.index_lut()[mask.read(1)]
    keep = valid.any(axis=0) & split.outside_validation(whole) & (channels != IGNORE_VALUE)
    expected = np.bincount(channels[keep], minlength=len(nc_data.classes)).tolist()  # pixels with no band left out
    assert np.bincount(y, minlength=len(nc_data.classes)).tolist() == expected


def test_baseline_is_deterministic(nc_data):
    a, b = (fit_pixel_forest(nc_data, 64, seed=3).state_dict() for _ in range(2))
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = fit_pixel_forest(nc_data, 64, seed=4).state_dict()
    assert not all(a[k].shape == c[k].shape and torch.equal(a[k], c[k]) for k in a)


def test_train_reports_the_baseline_and_keeps_the_better(invoke, tmp_path, nc_image, nc_labels):
    model = tmp_path / "m.pt"
    result = invoke("train", nc_image, nc_labels, "-o", model, *NC, "--epochs", "1", "--chips-per-epoch", "8")
    assert result.exit_code == 0, result.output
    mf = load_model_file(model)
    baseline = mf.training["baseline"]
    assert baseline["verdict"] in result.output and "pixel baseline" in baseline["verdict"]
    network = mf.training["network"]["metrics"] if baseline["kept"] == "baseline" else mf.metrics
    kept_better = (baseline["metrics"]["mean_iou"] > network["mean_iou"]) == (baseline["kept"] == "baseline")
    assert kept_better and mf.arch == (PIXEL_FOREST if baseline["kept"] == "baseline" else "unet")
    with open(tmp_path / "m-metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["1", "baseline"]
    assert float(rows[-1]["val_miou"]) == pytest.approx(baseline["metrics"]["mean_iou"])
    assert "baseline" in invoke("info", model).output


def test_train_model_baseline_predicts_window_by_window(invoke, tmp_path, nc_image, nc_labels):
    model = tmp_path / "m.pt"
    result = invoke("train", nc_image, nc_labels, "-o", model, *NC, "--model", "baseline")
    assert result.exit_code == 0, result.output
    mf = load_model_file(model)
    assert mf.arch == PIXEL_FOREST and mf.metrics["mean_iou"] > 0.1
    whole, windows = tmp_path / "whole.tif", tmp_path / "windows.tif"
    assert invoke("predict", model, nc_image, "-o", whole).exit_code == 0
    assert invoke("predict", model, nc_image, "-o", windows, "--window", "128", "--overlap", "32").exit_code == 0
    with rasterio.open(whole) as a, rasterio.open(windows) as b:
        assert set(np.unique(a.read(1))) <= set(mf.classes.values)
        # a pixel model needs 4 px of context (9x9 means): windows agree with one pass but for their borders
        assert (a.read(1) == b.read(1)).mean() > 0.98
    refused = invoke("export", model, "--onnx", tmp_path / "m.onnx")
    assert refused.exit_code == 2 and "pixel baseline" in refused.output and "--model network" in refused.output
    assert not (tmp_path / "m.onnx").exists()
