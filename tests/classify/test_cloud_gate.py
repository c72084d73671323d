"""`landsight cloud train | filter` and the `CloudGate` API the pipeline calls, on the real Landsat-8 crop."""

import csv
import json

import numpy as np
import pytest
import rasterio

from landsight.classify.gate import CloudGate
from landsight.errors import LabelError
from landsight.imagery.bands import BandSpec
from landsight.models.model_file import load_model_file
from tests.classify.conftest import L8, L8_QA, run


@pytest.fixture(scope="module")
def scene():
    with rasterio.open(L8) as src:
        image = src.read()
    with rasterio.open(L8_QA) as src:
        cloud = ((src.read(1) >> 14) & 3) == 3
    return image, cloud


def test_cloud_train_writes_a_gate_and_its_report(gate_model):
    model = load_model_file(gate_model, task="classification")
    assert model.classes.names == ["clear", "cloudy"] and model.options["preset"] == "cloud"
    assert model.bands.names == ("blue", "green", "red", "nir") and model.chip_size == 32
    assert model.training["data"]["kind"] == "cloud-mask" and model.training["data"]["cloudy_if"] == 0.05
    assert model.options["positive_class"] == "cloudy" and model.options["threshold"] == 0.5
    report = json.loads(gate_model.with_name("gate-report.json").read_text())
    assert report["split"]["blocked"] and report["split"]["class_counts"]["cloudy"]["test"] > 0
    assert report["candidates"][0]["weights"] == "imagenet"  # shipped EfficientNet-Lite0 weights, 4-band stem
    for name in ("report.html", "confusion.png", "pr.png", "errors.png"):
        assert gate_model.with_name(f"gate-{name}").exists()


def test_gate_api_takes_raw_images_of_any_size(gate_model, scene):
    image, cloud = scene
    gate = CloudGate.load(gate_model, device="cpu")
    assert gate.bands == BandSpec((1, 2, 3, 4), ("blue", "green", "red", "nir")) and gate.chip_size == 32
    covered = np.array([[cloud[r:r + 32, c:c + 32].mean() for c in range(0, 512, 32)] for r in range(0, 512, 32)])
    (r1, c1), (r0, c0) = np.unravel_index(covered.argmax(), covered.shape), np.unravel_index(covered.argmin(),
                                                                                           covered.shape)
    overcast = image[:, 32 * r1:32 * r1 + 32, 32 * c1:32 * c1 + 32]
    clear = image[:, 32 * r0:32 * r0 + 32, 32 * c0:32 * c0 + 32]
    flags = gate.cloudy([overcast, clear, image[:, :20, :45], image])
    assert [type(f) for f in flags] == [bool] * 4
    p_overcast, p_clear = gate.cloud_probability([overcast, clear])
    assert p_overcast > p_clear
    assert flags[3] is True  # the whole crop holds a cloud bank: some tile is cloudy
    assert gate.cloudy([]) == []


def test_cloud_filter_writes_chip_csv_and_clear_mask(gate_model, tmp_path):
    table, mask = tmp_path / "chips.csv", tmp_path / "clear.tif"
    result = run("cloud", "filter", gate_model, L8, "-o", table, "--mask", mask)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 16 * 16 and {r["cloudy"] for r in rows} == {"True", "False"}
    with rasterio.open(mask) as dst, rasterio.open(L8) as src:
        assert (dst.crs, dst.transform, dst.shape) == (src.crs, src.transform, src.shape)
        values = dst.read(1)
    assert set(np.unique(values)) == {0, 1}
    assert (values[::32, ::32] == 0).sum() == sum(r["cloudy"] == "True" for r in rows)


def test_cloud_filter_on_chip_folders(gate_model, chip_dir, tmp_path):
    out = tmp_path / "f.csv"
    result = run("cloud", "filter", gate_model, chip_dir / "clear", chip_dir / "cloudy", "-o", out)
    assert result.exit_code == 0 and "clear" in result.output
    assert len(list(csv.DictReader(out.open()))) == len(list(chip_dir.rglob("*.tif")))


def test_cloud_train_needs_both_classes(tmp_path):
    result = run("cloud", "train", L8, "--cloud-mask", L8_QA, "--cloudy-if", "1.01", "--chip-size", "32",
                 "-o", tmp_path / "m.pt")
    assert result.exit_code == 2 and "--cloudy-if" in result.output and "0<x<=1" in result.output
    with pytest.raises(LabelError):
        from landsight.classify.rules import ChipGrid, CloudRule, chips_from_cloud_mask

        chips_from_cloud_mask(L8, L8_QA, CloudRule(cloudy_if=0.0), ChipGrid(32))
