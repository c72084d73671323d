"""Labels that miss the image or hold nothing, NaN / Inf pixels in float rasters, option values out of range."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

from landsight.models.model_file import load_model_file
from tests.faults.conftest import (
    SCHEME,
    TINY_SEG,
    Kit,
    assert_refused,
    assert_succeeded,
    invoke,
    leftovers,
    read_raster,
)

Args = Callable[[Kit, Path], list[object]]

NAN_PIXELS = 64 * 64 + 256
"""Non-finite pixels of `samples.nan_image`: a 64 x 64 NaN block and one +Inf row of 256."""

LABEL_COMMANDS: dict[str, Args] = {
    "rasterize": lambda k, labels: ["rasterize", k.s.image, labels, "-o", k.out / "mask.tif"],
    "dataset-check": lambda k, labels: ["dataset", "check", k.s.image, labels, "--json", k.out / "report.json"],
    "train": lambda k, labels: ["train", k.s.image, labels, "-o", k.out / "m.pt", *TINY_SEG],
    "evaluate": lambda k, labels: ["evaluate", k.pred, labels, "-o", k.out / "evaluation"],
    "compare": lambda k, labels: ["compare", k.pred, labels, "-o", k.out / "comparison"],
}


@pytest.mark.parametrize("command", LABEL_COMMANDS)
def test_labels_that_miss_the_image_are_refused(command: str, kit: Kit) -> None:
    outcome = invoke(*LABEL_COMMANDS[command](kit, kit.s.far_labels))
    assert_refused(outcome, kit.s.far_labels)
    assert kit.outputs() == [], kit.outputs()  # train: no work folder left behind either


@pytest.mark.parametrize("command", ["rasterize", "dataset-check", "train"])
def test_labels_without_features_are_refused(command: str, kit: Kit) -> None:
    outcome = invoke(*LABEL_COMMANDS[command](kit, kit.s.empty_labels))
    assert_refused(outcome, kit.s.empty_labels)
    assert kit.outputs() == [], kit.outputs()


def test_dataset_check_counts_nan_and_inf_as_nodata(kit: Kit) -> None:
    """The issue: `dataset check` reported 0 % nodata on a float raster full of NaN."""
    report = kit.out / "report.json"
    assert_succeeded(invoke("dataset", "check", kit.s.nan_image, kit.s.labels, "--json", report, "--chip-size", "64"))
    assert json.loads(report.read_text())["nodata_fraction"] == pytest.approx(NAN_PIXELS / 256 ** 2, abs=1e-5)


def test_predict_leaves_nan_and_inf_pixels_as_nodata(kit: Kit) -> None:
    """The issue: NaN pixels turned into background and degraded the whole image. Non-finite pixels come out as
    nodata (255) and every other pixel holds probabilities that sum to 250."""
    out = kit.out / "probabilities.tif"
    assert_succeeded(invoke("predict", kit.seg, kit.s.nan_image, "-o", out, "--probabilities", *SCHEME))
    with rasterio.open(kit.s.nan_image) as src:
        finite = np.isfinite(src.read(1))
    probs = read_raster(out).astype(int)
    assert (probs[:, ~finite] == 255).all()
    assert (probs[:, finite] != 255).all()
    assert np.abs(probs[:, finite].sum(axis=0) - 250).max() <= 2


def test_train_ignores_nan_pixels_and_saves_finite_weights(kit: Kit) -> None:
    """The issue: training on NaN pixels ended with loss NaN and a model full of NaN, exit 0."""
    model = kit.out / "m.pt"
    assert_succeeded(invoke("train", kit.s.nan_image, kit.s.labels, "-o", model, "--class-name", "building",
                            *TINY_SEG))
    saved = load_model_file(model)
    assert np.isfinite(saved.normalization.mean).all() and np.isfinite(saved.normalization.std).all()
    assert all(torch.isfinite(v).all() for v in saved.state_dict.values() if v.is_floating_point())
    assert not leftovers(kit.out)


def test_train_refuses_an_image_without_finite_pixels(kit: Kit) -> None:
    image = kit.tmp / "all-nan.tif"
    with rasterio.open(kit.s.nan_image) as src:
        profile = src.profile
    with rasterio.open(image, "w", **profile) as dst:
        dst.write(np.full((1, 256, 256), np.nan, dtype=np.float32))
    outcome = invoke("train", image, kit.s.labels, "-o", kit.out / "m.pt", *TINY_SEG)
    assert_refused(outcome, image)
    assert kit.outputs() == [], kit.outputs()


def test_change_does_not_count_nan_pixels(kit: Kit) -> None:
    """The same image before and after, the after copy with NaN / Inf pixels: nothing changed, and those pixels
    are not counted as valid."""
    out = kit.out / "change"
    assert_succeeded(invoke("change", kit.s.image, kit.s.nan_image, "-o", out, "--mode", "image"))
    pixels = json.loads((out / "summary.json").read_text())["pixels"]
    assert pixels["changed"] == 0
    assert pixels["valid"] <= 256 ** 2 - NAN_PIXELS


RANGES: dict[str, Args] = {
    "cloud-filter-threshold": lambda k, o: ["cloud", "filter", k.gate, k.s.scene, "-o", o / "chips.csv",
                                            "--threshold", "7"],
    "predict-window": lambda k, o: ["predict", k.seg, k.s.image, "-o", o / "pred.tif", "--window", "0"],
    "predict-overlap": lambda k, o: ["predict", k.seg, k.s.image, "-o", o / "pred.tif", "--overlap", "-32"],
    "predict-batch-size": lambda k, o: ["predict", k.seg, k.s.image, "-o", o / "pred.tif", "--batch-size", "0"],
    "train-epochs": lambda k, o: ["train", k.s.image, k.s.labels, "-o", o / "m.pt", "--epochs", "0"],
    "train-val-fraction": lambda k, o: ["train", k.s.image, k.s.labels, "-o", o / "m.pt", "--val-fraction", "1.5"],
    "train-chip-size": lambda k, o: ["train", k.s.image, k.s.labels, "-o", o / "m.pt", "--chip-size", "-64"],
    "train-ensemble": lambda k, o: ["train", k.s.image, k.s.labels, "-o", o / "m.pt", "--ensemble", "0"],
    "classify-train-cloudy-if": lambda k, o: ["classify", "train", k.s.scene, "--cloud-mask", k.s.scene, "-o",
                                              o / "c.pt", "--cloudy-if", "1.5"],
    "cloud-train-stride": lambda k, o: ["cloud", "train", k.s.scene, "--cloud-mask", k.s.scene, "-o", o / "c.pt",
                                        "--stride", "0"],
    "similar-index-k": lambda k, o: ["similar", "index", k.gate, k.s.scene, "-o", o / "index.npz", "-k", "0"],
    "export-batch-size": lambda k, o: ["export", k.gate, "--onnx", o / "m.onnx", "--batch-size", "0"],
    "pipeline-batch-size": lambda k, o: ["pipeline", "run", "--input", k.s.image, "--model", k.seg, "-o",
                                         o / "pipeline", "--batch-size", "0"],
}


@pytest.mark.parametrize("case", RANGES)
def test_option_out_of_range_is_refused(case: str, kit: Kit) -> None:
    """The issue: `cloud filter --threshold 7` was accepted and marked every chip clear."""
    args = RANGES[case](kit, kit.out)
    option = str(args[-2])  # every case ends with OPTION VALUE
    assert_refused(invoke(*args), option)
    assert kit.outputs() == []
