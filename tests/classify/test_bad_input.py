"""Bad input gets a clear message naming the value and the fix, and exit code 2."""

import numpy as np
import pytest
import rasterio
import timm
import torch

from landsight.classify.folders import load_class_folders
from tests.classify.conftest import L8, NC_IMAGE, NC_LABELS, run, write_chip


@pytest.fixture
def real_chips():
    """Eight 32 px chips of real Landsat-8 pixels, four from the cloud bank and four from clear land."""
    with rasterio.open(L8) as src:
        image = src.read()
    return [image[:, 200:232, 32 * i:32 * i + 32] for i in range(4)], [image[:, 0:32, 32 * i:32 * i + 32]
                                                                        for i in range(4)]


def _folders(root, cloudy, clear, suffix=".tif"):
    for i, chip in enumerate(cloudy):
        write_chip(root / "cloudy" / f"c{i}{suffix}", chip)
    for i, chip in enumerate(clear):
        write_chip(root / "clear" / f"k{i}{suffix}", chip)
    return root


def test_empty_class_folder(tmp_path, real_chips):
    root = _folders(tmp_path / "data", *real_chips)
    (root / "haze").mkdir()
    result = run("classify", "train", root, "-o", tmp_path / "m.pt")
    assert result.exit_code == 2 and "haze" in result.output and "hold no image chips" in result.output


def test_a_single_class(tmp_path, real_chips):
    root = _folders(tmp_path / "data", real_chips[0], [])
    (root / "clear").rmdir() if (root / "clear").exists() else None
    result = run("classify", "train", root, "-o", tmp_path / "m.pt")
    assert result.exit_code == 2 and "single class folder 'cloudy'" in result.output and "at least two" in result.output


def test_unreadable_chips_are_named_and_can_be_skipped(tmp_path, real_chips):
    root = _folders(tmp_path / "data", *real_chips)
    (root / "clear" / "broken.tif").write_bytes(b"not a tiff at all")
    result = run("classify", "train", root, "-o", tmp_path / "m.pt")
    assert result.exit_code == 2 and "broken.tif" in result.output and "--skip-unreadable" in result.output
    assert len(load_class_folders(root, skip_unreadable=True)) == 8


def test_mixed_band_counts(tmp_path, real_chips):
    cloudy, clear = real_chips
    root = _folders(tmp_path / "data", cloudy, [])
    for i, chip in enumerate(clear):  # 3-band 8-bit PNGs beside 4-band GeoTIFFs
        write_chip(root / "clear" / f"k{i}.png", (chip[:3] // 256).astype(np.uint8))
    result = run("classify", "train", root, "-o", tmp_path / "m.pt")
    assert result.exit_code == 2 and "different band counts" in result.output
    assert "3 band(s): 4 chip(s)" in result.output and "--bands" in result.output


def test_budget_too_small_says_what_would_do(tmp_path):
    result = run("classify", "train", NC_IMAGE, "--labels", NC_LABELS, "--class-field", "label", "--chip-size", "8",
                 "--stride", "4", "--backbones", "resnet18", "--budget", "2s", "-o", tmp_path / "m.pt")
    assert result.exit_code == 2, result.output
    assert "--budget of 2 s is too small to train anything" in result.output and "pass --budget" in result.output
    assert not (tmp_path / "m.pt").exists()


def test_weights_of_another_architecture_name_both(tmp_path):
    weights = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18").state_dict(), weights)  # random init, nothing downloaded
    result = run("classify", "train", NC_IMAGE, "--labels", NC_LABELS, "--class-field", "label", "--chip-size",
                 "8", "--stride", "4", "--weights", weights, "--backbones", "tf_efficientnet_lite0",
                 "-o", tmp_path / "m.pt")
    assert result.exit_code == 2
    assert "resnet18 weights" in result.output and "tf_efficientnet_lite0" in result.output
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"\x00" * 64)
    result = run("classify", "train", NC_IMAGE, "--labels", NC_LABELS, "--class-field", "label", "--weights",
                 garbage, "-o", tmp_path / "m.pt")
    assert result.exit_code == 2 and "garbage.pth" in result.output


def test_bad_options_are_refused(tmp_path):
    base = ["classify", "train", NC_IMAGE, "--labels", NC_LABELS, "--class-field", "label", "-o", tmp_path / "m.pt"]
    assert "not a duration" in run(*base, "--budget", "soon").output
    assert "unknown backbone 'resnet9000'" in run(*base, "--backbones", "resnet9000").output
    result = run("classify", "train", tmp_path / "missing", "-o", tmp_path / "m.pt")
    assert result.exit_code == 2 and "not found" in result.output
    result = run("classify", "train", NC_IMAGE, "--labels", NC_LABELS, "-o", tmp_path / "m.pt")
    assert result.exit_code == 2 and "--class-field" in result.output
