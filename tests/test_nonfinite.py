"""NaN and +/-Inf pixels are nodata in float rasters (dataset check, train, predict, cloud filter), and training
stops with exit 2 on a non-finite loss without writing a model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.windows import Window

from landsight.classify.fit import TensorData, Trial, run_trial
from landsight.classify.network import ARCH, create_classifier
from landsight.errors import CheckpointError, ConfigError, RasterError, TrainingError
from landsight.imagery.bands import BandSpec, Normalization, compute_normalization
from landsight.imagery.io import read_masked, read_valid_mask
from landsight.imagery.normalize import fit_normalization
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.models.model_file import ModelFile, load_model_file
from tests.conftest import DATA, SAMPLE

TINY = ["--arch", "fpn", "--encoder", "mobilenetv3_small_050", "--weights", "none", "--chip-size", "64",
        "--epochs", "1", "--chips-per-epoch", "8", "--batch-size", "4", "--class-name", "building"]
"""A tiny segmentation run (an 8 MB FPN, one epoch of eight 64 px chips): a few seconds on a CPU."""
L8 = DATA / "landsat8-clouds" / "l8-crop.tif"


Region = tuple[int, int, int, int]
"""Pixel rows row0:row1 and columns col0:col1."""


def _float_copy(src_path: Path, out: Path, bad: list[tuple[Region, float]], size: int | None = None) -> Path:
    """`src_path` (its top left `size` px square, else whole) as float32, same grid and nodata, with the `bad`
    regions set to their value in every band."""
    with rasterio.open(src_path) as src:
        window = Window(0, 0, size or src.width, size or src.height)
        data = src.read(window=window).astype(np.float32)
        profile = src.profile | {"dtype": "float32", "width": data.shape[2], "height": data.shape[1]}
    for (r0, r1, c0, c1), value in bad:
        data[:, r0:r1, c0:c1] = value
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out


BAD = [((0, 64, 0, 64), np.nan), ((200, 201, 0, 600), np.inf), ((300, 420, 500, 501), -np.inf),
       ((640, 700, 100, 180), np.nan)]
"""Atlanta regions made non-finite: a NaN block in the corner and inside, a +Inf row and a -Inf column piece."""


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The Atlanta image as float32 with NaN/Inf regions, and a twin whose same pixels hold its declared nodata (0)."""
    root = tmp_path_factory.mktemp("nonfinite")
    nan = _float_copy(SAMPLE / "atlanta.tif", root / "nan.tif", BAD)
    declared = _float_copy(SAMPLE / "atlanta.tif", root / "declared.tif", [(region, 0.0) for region, _ in BAD])
    return nan, declared


@pytest.fixture(scope="module")
def models(pair: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny model trained on each raster of `pair` (same seed and settings)."""
    root = tmp_path_factory.mktemp("nonfinite-models")
    out = []
    for image in pair:
        model = root / f"{image.stem}.pt"
        result = _run("train", image, SAMPLE / "atlanta-buildings.geojson", "-o", model, *TINY)
        assert result.exit_code == 0, result.output
        out.append(model)
    return out[0], out[1]


def _run(*args: object):
    from click.testing import CliRunner

    from landsight.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def test_read_masked_marks_nan_and_inf_invalid(pair):
    with rasterio.open(pair[0]) as src:
        data, valid = read_masked(src, Window(0, 0, 600, 900))
        pixels = read_valid_mask(src, Window(0, 0, 600, 900))
    assert data.dtype == np.float32 and valid.shape == data.shape and (pixels == valid[0]).all()
    assert not valid[0, :64, :64].any() and not valid[0, 200].any() and not valid[0, 300:420, 500].any()
    assert np.isfinite(data[valid]).all() and valid[0, 100:200, 100:200].all()


def test_dataset_check_counts_nan_and_inf_as_nodata(pair, tmp_path):
    fractions = []
    for image in pair:
        report = tmp_path / f"{image.stem}.json"
        result = _run("dataset", "check", image, SAMPLE / "atlanta-buildings.geojson", "--class-name", "building",
                      "--json", report)
        assert result.exit_code == 0, result.output
        fractions.append(json.loads(report.read_text())["nodata_fraction"])
    with rasterio.open(pair[0]) as src:
        expected = np.mean(~((src.read_masks(1) > 0) & np.isfinite(src.read(1))))
    assert fractions[0] == fractions[1] == pytest.approx(expected, abs=1e-6)
    assert fractions[0] > 64 * 64 / (600 * 900)


def test_training_ignores_nan_pixels_like_declared_nodata(models):
    nan_model, declared_model = (load_model_file(m) for m in models)  # loading checks the weights are finite
    assert nan_model.normalization == declared_model.normalization
    assert all(np.isfinite(nan_model.normalization.mean + nan_model.normalization.std))
    for key, value in nan_model.state_dict.items():
        assert torch.equal(value, declared_model.state_dict[key]), key


def test_predict_writes_nodata_where_the_image_is_nan(models, pair, tmp_path):
    outputs = []
    for image in pair:
        out = tmp_path / f"{image.stem}-pred.tif"
        result = _run("predict", models[0], image, "-o", out, "--probabilities")
        assert result.exit_code == 0, result.output
        with rasterio.open(out) as dst:
            outputs.append(dst.read())
    nan_pred, declared_pred = outputs
    assert (nan_pred[:, :64, :64] == IGNORE_VALUE).all() and (nan_pred[:, 200] == IGNORE_VALUE).all()
    assert (nan_pred[:, 640:700, 100:180] == IGNORE_VALUE).all()
    assert np.array_equal(nan_pred, declared_pred)  # NaN/Inf pixels are exactly declared nodata
    assert (nan_pred[:, 400:600, 200:400] != IGNORE_VALUE).all()


def test_training_stops_on_a_non_finite_loss(pair, tmp_path, monkeypatch):
    import landsight.train.task as task_module

    real = task_module.create_loss
    monkeypatch.setattr(task_module, "create_loss", lambda *args, **kw: _Exploding(real(*args, **kw)))
    model = tmp_path / "m.pt"
    result = _run("train", pair[0], SAMPLE / "atlanta-buildings.geojson", "-o", model, *TINY)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "epoch 1" in result.output and "learning rate" in result.output
    assert not model.exists() and not list(tmp_path.glob("*.resume.pt"))


class _Exploding(torch.nn.Module):
    """A loss that becomes infinite (what a far too high learning rate leads to)."""

    def __init__(self, loss: torch.nn.Module) -> None:
        super().__init__()
        self.loss = loss

    def forward(self, logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.loss(logits, mask) * float("inf")


def test_classifier_training_stops_on_a_non_finite_loss(monkeypatch):
    import landsight.classify.fit as classify_fit

    real = classify_fit.loss_value
    monkeypatch.setattr(classify_fit, "loss_value", lambda *a: real(*a) * float("nan"))
    x = torch.randn(16, 2, 32, 32)
    y = torch.eye(2)[torch.arange(16) % 2]
    data = TensorData(x[:12], y[:12], x[12:], y[12:], multi_label=False)
    with pytest.raises(TrainingError, match=r"epoch 1 .*resnet18"):
        run_trial(Trial("resnet18", 1e-3, None), data, 60, 2, 2, torch.device("cpu"), batch_size=4)


def test_statistics_without_a_finite_value_name_the_band(tmp_path):
    image = _float_copy(SAMPLE / "atlanta.tif", tmp_path / "all-nan.tif", [((0, 900, 0, 600), np.nan)])
    with rasterio.open(image) as src, pytest.raises(RasterError, match="'b1'"):
        compute_normalization([(src, [Window(0, 0, 600, 900)])], BandSpec((1,), ("b1",), 1))
    chips = np.ones((4, 2, 8, 8), dtype=np.float32)
    chips[:, 1] = np.inf
    with pytest.raises(ConfigError, match="'nir'"):
        fit_normalization(chips, ["red", "nir"])
    chips[0, 1] = 5.0
    assert fit_normalization(chips, ["red", "nir"]) == Normalization((1.0, 5.0), (1.0, 1.0))


def test_model_files_with_non_finite_weights_are_not_written(tmp_path):
    model = _gate_file(BandSpec((1,), ("b1",), 1), Normalization((0.0,), (1.0,)))
    model.state_dict = {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
                        for k, v in model.state_dict.items()}
    with pytest.raises(CheckpointError, match="NaN or Inf"):
        model.save(tmp_path / "nan.pt")
    assert not (tmp_path / "nan.pt").exists()


def _gate_file(bands: BandSpec, normalization: Normalization) -> ModelFile:
    """An untrained clear/cloudy classifier (32 px chips): deterministic outputs are all these tests need."""
    torch.manual_seed(0)
    network = create_classifier(ARCH, "resnet18", bands.count, 2)
    return ModelFile(arch=ARCH, encoder="resnet18", bands=bands, normalization=normalization,
                     classes=ClassTable.from_names(["clear", "cloudy"], background=False), chip_size=32,
                     state_dict=network.state_dict(), task="classification",
                     options={"multi_label": False, "normalization_mode": "dataset", "threshold": 0.5,
                              "positive_class": "cloudy"})


def test_cloud_filter_treats_nan_pixels_as_nodata(tmp_path):
    with rasterio.open(L8) as src:
        bands = BandSpec(tuple(range(1, src.count + 1)), tuple(src.descriptions), src.count)
    bad = [((0, 32, 0, 32), np.nan), ((40, 50, 32, 64), np.inf)]  # the first chip all NaN
    nan = _float_copy(L8, tmp_path / "nan.tif", bad, size=160)
    with rasterio.open(nan, "r+") as dst:
        dst.nodata = -1.0
    declared = _float_copy(nan, tmp_path / "declared.tif", [(region, -1.0) for region, _ in bad])
    gate = tmp_path / "gate.pt"
    _gate_file(bands, Normalization((10000.0,) * bands.count, (2000.0,) * bands.count)).save(gate)
    rows = []
    for image in (nan, declared):
        out = tmp_path / f"{image.stem}.csv"
        result = _run("cloud", "filter", gate, image, "-o", out)
        assert result.exit_code == 0, result.output
        with open(out) as handle:
            rows.append([{k: v for k, v in r.items() if k != "id"} for r in csv.DictReader(handle)])
    assert rows[0] == rows[1] and len(rows[0]) == 5 * 5 - 1  # the all-NaN chip is skipped
    assert all(np.isfinite(float(r["p_cloudy"])) for r in rows[0])
