"""change: two dates of the shipped RGBN series, planted changes under misregistration, class maps and --model."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import rasterio
import shapely
from click.testing import CliRunner

from landsight.change import ChangeParams, detect_change
from landsight.cli.main import cli
from landsight.labels.classes import ClassTable
from landsight.labels.rasterize import classes_tag

SERIES = Path(__file__).parent / "data" / "rgbn-time-series"
SAMPLE = Path(__file__).parent.parent / "landsight" / "sample_data"
GRAVEL = (slice(73, 85), slice(305, 317))
"""12 x 12 px of bright river gravel in rgbn_20160101 (rows, cols)."""
PATCH = (slice(150, 162), slice(440, 452))
"""Where the gravel is pasted, over dense vegetation, in the after date."""


def _misregistered(data: np.ndarray) -> np.ndarray:
    """The scene moved 1 px right and down (edges repeated), as a second acquisition slightly off."""
    out = np.empty_like(data)
    out[..., 1:, 1:] = data[..., :-1, :-1]
    out[..., 0, :] = out[..., 1, :]
    out[..., :, 0] = out[..., :, 1]
    return out


@pytest.fixture
def planted_pair(tmp_path: Path) -> tuple[Path, Path]:
    """Before: rgbn_20160101. After: the same scene 1 px off, brighter (x1.1 + 5), noisy (sd 2 DN), with gravel
    pasted over 12 x 12 px of forest."""
    before = SERIES / "rgbn_20160101.tif"
    with rasterio.open(before) as src:
        profile, data = src.profile, src.read()
    after = _misregistered(data)
    after[:, PATCH[0], PATCH[1]] = data[:, GRAVEL[0], GRAVEL[1]]
    noise = np.random.default_rng(0).normal(0, 2, after.shape)
    after = np.clip(after * 1.1 + 5 + noise, 0, 255).astype(np.uint8)
    with rasterio.open(tmp_path / "after.tif", "w", **profile) as dst:
        dst.write(after)
    return before, tmp_path / "after.tif"


def _mask(report: Path) -> np.ndarray:
    with rasterio.open(report / "change.tif") as src:
        return src.read(1)


def _features(report: Path) -> list[dict]:
    return json.loads((report / "layers" / "changes.geojson").read_text())["features"]


def test_two_shipped_dates(tmp_path):
    """The shipped dates are byte-identical copies: a change mask and an (empty) polygon layer come out."""
    before, after = SERIES / "rgbn_20160101.tif", SERIES / "rgbn_20170203.tif"
    result = CliRunner().invoke(cli, ["change", str(before), str(after), "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    report = tmp_path / "report"
    with rasterio.open(report / "change.tif") as mask, rasterio.open(before) as src:
        assert (mask.crs, mask.transform, mask.shape) == (src.crs, src.transform, src.shape)
        assert set(np.unique(mask.read(1))) == {0}
    summary = json.loads((report / "summary.json").read_text())
    assert summary["provenance"]["parameters"]["mode"] == "image"
    assert summary["provenance"]["inputs"]["before"]["sha256"] == summary["provenance"]["inputs"]["after"]["sha256"]
    assert summary["pixels"]["changed"] == 0 and _features(report) == []
    assert (report / "review.html").is_file() and (report / "report.html").is_file()


def test_planted_change_found_despite_misregistration(planted_pair, tmp_path):
    summary = detect_change(*planted_pair, tmp_path / "report")
    features = _features(tmp_path / "report")
    assert len(features) == 1 and features[0]["properties"]["change"] == "brighter"
    mask = _mask(tmp_path / "report")
    planted = np.zeros(mask.shape, dtype=bool)
    planted[PATCH] = True
    assert mask[planted].mean() > 0.9            # the pasted patch is found ...
    assert not mask[~planted].any()              # ... and nothing else, although every pixel moved by 1 px
    assert summary["pixels"]["changed"] == int(mask.sum())
    assert summary["changes"]["brighter"]["any"]["count"] == 1
    assert summary["changed_area_m2"] == pytest.approx(mask.sum() * 25.0)


def test_radius_zero_is_fooled_by_misregistration(planted_pair, tmp_path):
    summary = detect_change(*planted_pair, tmp_path / "report", params=ChangeParams(radius=0))
    assert summary["pixels"]["changed"] > 1000   # every edge in the scene now looks like change


def _class_raster(path: Path, data: np.ndarray, profile: dict) -> Path:
    table = ClassTable.from_names(["building"], background=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data, 1)
        dst.update_tags(classes=classes_tag(table))
    return path


def test_class_maps_appeared_and_disappeared(tmp_path):
    """Building masks of Atlanta: one building demolished, one built, the whole map 1 px off."""
    runner = CliRunner()
    args = ["rasterize", str(SAMPLE / "atlanta.tif"), str(SAMPLE / "atlanta-buildings.geojson"),
            "-o", str(tmp_path / "before.tif"), "--class-name", "building"]
    assert runner.invoke(cli, args).exit_code == 0
    with rasterio.open(tmp_path / "before.tif") as src:
        profile, data = src.profile, src.read(1)
    after = _misregistered(data)
    after[:62, :40][after[:62, :40] == 1] = 0           # OSM 102923, alone in the top-left corner, is demolished
    gone = data[:62, :40] == 1                           # where it stood on the before date
    after[600:630, 300:340] = 1                          # a 15 x 20 m building appears on open ground
    _class_raster(tmp_path / "after.tif", after, profile)
    result = runner.invoke(cli, ["change", str(tmp_path / "before.tif"), str(tmp_path / "after.tif"),
                                 "-o", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    features = _features(tmp_path / "report")
    kinds = sorted((f["properties"]["change"], f["properties"]["class"]) for f in features)
    assert kinds == [("appeared", "building"), ("disappeared", "building")]
    appeared = next(f for f in features if f["properties"]["change"] == "appeared")["properties"]
    assert appeared["pixels"] == 30 * 40 and appeared["area_m2"] == pytest.approx(300.0)
    mask = _mask(tmp_path / "report")
    assert mask[600:630, 300:340].all() and mask[:62, :40][gone].all()
    disappeared = next(f for f in features if f["properties"]["change"] == "disappeared")["properties"]
    assert disappeared["pixels"] == int(gone.sum())
    assert mask.sum() == 30 * 40 + gone.sum()            # the 1 px shift of every other building is no change
    assert "appeared building" in result.output


def test_model_path_predicts_both_dates(planted_pair, tmp_path, monkeypatch):
    """--model goes through landsight.predict.predict_raster (stubbed: NDVI > 0.3 is 'vegetation')."""
    calls = []

    def predict_raster(model, image, out_path, device="auto", **kwargs):
        calls.append((model, Path(image).name, device, kwargs))
        with rasterio.open(image) as src:
            data = src.read().astype(np.float32)
            profile = {**src.profile, "count": 1, "nodata": 255}
        ndvi = (data[3] - data[0]) / np.maximum(data[3] + data[0], 1)
        table = ClassTable.from_names(["vegetation"], background=True)
        with rasterio.open(out_path, "w", **profile) as dst:
            dst.write((ndvi > 0.3).astype(np.uint8), 1)
            dst.update_tags(classes=classes_tag(table), model_sha256="stub")
        return {"output": str(out_path)}

    monkeypatch.setitem(sys.modules, "landsight.predict", types.SimpleNamespace(predict_raster=predict_raster))
    model = tmp_path / "model.pt"
    model.write_bytes(b"stub")
    summary = detect_change(*planted_pair, tmp_path / "report", model=model, device="cpu",
                            predict_kwargs={"batch_size": 2})
    assert [c[1] for c in calls] == ["rgbn_20160101.tif", "after.tif"] and calls[0][2:] == ("cpu", {"batch_size": 2})
    assert summary["provenance"]["model"] == str(model)
    assert summary["provenance"]["parameters"]["mode"] == "classes"
    assert (tmp_path / "report" / "predictions" / "after.tif").is_file()
    disappeared = [f for f in _features(tmp_path / "report") if f["properties"]["change"] == "disappeared"]
    assert disappeared and all(f["properties"]["class"] == "vegetation" for f in disappeared)
    box = shapely.box(PATCH[1].start, PATCH[0].start, PATCH[1].stop, PATCH[0].stop)
    mask = _mask(tmp_path / "report")
    rows, cols = np.nonzero(mask == 1)
    assert all(box.buffer(1).contains(shapely.Point(c + 0.5, r + 0.5)) for r, c in zip(rows, cols, strict=True))


def test_mixed_inputs_and_existing_output_exit_2(planted_pair, tmp_path):
    runner = CliRunner()
    mask = _class_raster(tmp_path / "mask.tif", np.zeros((403, 515), dtype=np.uint8),
                         {"driver": "GTiff", "width": 515, "height": 403, "count": 1, "dtype": "uint8",
                          "crs": "EPSG:32618", "transform": rasterio.open(planted_pair[0]).transform})
    result = runner.invoke(cli, ["change", str(planted_pair[0]), str(mask), "-o", str(tmp_path / "r1")])
    assert result.exit_code == 2 and "class raster" in result.output and not (tmp_path / "r1").exists()
    (tmp_path / "r2").mkdir()
    result = runner.invoke(cli, ["change", str(planted_pair[0]), str(planted_pair[1]), "-o", str(tmp_path / "r2")])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_after_on_another_grid_is_warped(tmp_path):
    """AFTER cropped to a sub-window (another transform and size): compared on BEFORE's grid, no change inside."""
    before = SERIES / "rgbn_20160101.tif"
    with rasterio.open(before) as src:
        window = rasterio.windows.Window(50, 40, 300, 200)
        profile = {**src.profile, "width": 300, "height": 200, "transform": src.window_transform(window),
                   "nodata": 0}
        data = src.read(window=window)
    with rasterio.open(tmp_path / "crop.tif", "w", **profile, photometric="MINISBLACK") as dst:
        dst.write(np.maximum(data, 1))  # 0 is nodata now; MINISBLACK: the 4th band (NIR) is not alpha
    summary = detect_change(before, tmp_path / "crop.tif", tmp_path / "report")
    mask = _mask(tmp_path / "report")
    assert mask.shape == (403, 515)
    assert not mask[41:239, 51:349].any() and (mask[:30] == 255).all()
    assert summary["pixels"]["valid"] == 300 * 200 and summary["pixels"]["changed"] == 0
