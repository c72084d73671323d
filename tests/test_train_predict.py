"""Train -> info -> predict on the real Atlanta sample, through the CLI; seams, determinism, bad input."""

import json

import numpy as np
import pytest
import rasterio
import torch
from click.testing import CliRunner

from landsight.cli.main import cli
from landsight.imagery.windows import aligned_window_rows, blocked_split
from landsight.labels.classes import IGNORE_VALUE
from landsight.labels.rasterize import rasterize_labels
from landsight.labels.weights import class_weights
from landsight.models.model_file import load_model_file
from landsight.predict.predictor import Predictor

DEMO_SETTINGS = ["--epochs", "6", "--chips-per-epoch", "64", "--chip-size", "256", "--batch-size", "8",
                 "--class-weights", "1,4", "--val-fraction", "0"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(atlanta_model):
    """The session's small building model (tests/conftest.py)."""
    return atlanta_model


@pytest.fixture(scope="module")
def demo_trained(tmp_path_factory):
    """A building model trained with the demo's settings (about a minute on 2 cores): confident enough that
    seam checks measure the windowing, not a coin flip on pixels where an untrained model says 0.5."""
    from tests.conftest import SAMPLE

    out = tmp_path_factory.mktemp("demo-model") / "buildings.pt"
    result = run("train", SAMPLE / "atlanta.tif", SAMPLE / "atlanta-buildings.geojson", "-o", out,
                 "--class-name", "building", *DEMO_SETTINGS)
    assert result.exit_code == 0, result.output
    return out


def test_model_file_carries_everything(trained, atlanta_image):
    model = load_model_file(trained)
    assert model.arch == "unet" and model.encoder == "tf_efficientnet_lite0"
    assert model.bands.count == 1 and model.chip_size == 128
    assert model.classes.names == ["background", "building"]
    assert 0 < model.normalization.mean[0] < 65535 and model.normalization.std[0] > 0
    assert len(model.training["data_sha256"]) == 64
    assert model.training["sources"][0]["image"].endswith("atlanta.tif")
    assert model.training["epochs_run"] == 3
    assert set(model.metrics["per_class"]) == {"background", "building"}
    assert (trained.parent / "buildings-metrics.csv").read_text().count("\n") == 5  # header, 3 epochs, baseline
    assert (trained.parent / "buildings-curves.png").stat().st_size > 10_000
    assert not (trained.parent / "buildings.pt.resume.pt").exists()


def test_info_prints_the_model(trained):
    result = run("info", trained)
    assert result.exit_code == 0
    assert "unet / tf_efficientnet_lite0" in result.output and "1=building" in result.output
    meta = json.loads(run("info", trained, "--json").output)
    assert meta["format"] == "landsight-model" and meta["sha256"] == load_model_file(trained).sha256


def test_prediction_is_georeferenced_tagged_and_deterministic(trained, atlanta_image, tmp_path):
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    assert run("predict", trained, atlanta_image, "-o", a).exit_code == 0
    assert run("predict", trained, atlanta_image, "-o", b).exit_code == 0
    with rasterio.open(atlanta_image) as img, rasterio.open(a) as pa, rasterio.open(b) as pb:
        assert (pa.crs, pa.transform, pa.width, pa.height) == (img.crs, img.transform, img.width, img.height)
        assert np.array_equal(pa.read(1), pb.read(1))
        tags = pa.tags()
        assert tags["model_sha256"] == load_model_file(trained).sha256
        assert json.loads(tags["bands"])["model"]["names"] == ["b1"]
        assert json.loads(tags["tile_scheme"]) == {"window": 1024, "overlap": 128, "blend": "quadratic-ramp"}
        assert "mean" in json.loads(tags["normalization"])
        assert pa.profile["tiled"] and pa.profile["compress"] == "deflate"
        assert set(np.unique(pa.read(1))) <= {0, 1}


def test_predict_says_its_plan_before_the_work_and_then_the_expected_time(trained, atlanta_image, tmp_path,
                                                                           monkeypatch):
    import itertools

    clock = itertools.count(0, 10.0)  # every look at the clock: 10 s later
    monkeypatch.setattr("landsight.progress.monotonic", lambda: next(clock))
    monkeypatch.setattr("landsight.progress.LARGE_PLAN_WINDOWS", 100)
    result = run("predict", trained, atlanta_image, "-o", tmp_path / "p.tif", "--window", "64", "--overlap", "0",
                 "--batch-size", "4")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())  # log lines are wrapped
    windows = sum(len(row) for row in aligned_window_rows(600, 900, 64, 0))
    plan = (f"600 x 900 px (0.5 Mpx), {windows} windows of 64 px (overlap 0 px) in {-(-10 // 4) * 15} forward "
            "pass(es) of up to 4 window(s)")
    assert windows == 150 and plan in text
    assert "predict: 150 windows is a large job" in text
    assert "predict: 4 of 150 windows in 10 s (0.40/s); about 6 min left" in text
    assert text.index(plan) < text.index("of 150 windows in") < text.index("wrote")


def test_probabilities_output(trained, atlanta_image, tmp_path):
    out = tmp_path / "p.tif"
    assert run("predict", trained, atlanta_image, "-o", out, "--probabilities").exit_code == 0
    with rasterio.open(out) as src:
        assert src.count == 2 and src.descriptions == ("p(background)", "p(building)")
        total = src.read().astype(int).sum(axis=0)
        assert np.abs(total - 250).max() <= 1


def _mosaic(src_path, out, reps=2):
    """The Atlanta image tiled reps x reps (a real scene large enough for several 1024 px windows)."""
    with rasterio.open(src_path) as src:
        data = np.tile(src.read(), (1, reps, reps))
        profile = src.profile | {"width": data.shape[2], "height": data.shape[1]}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out


def _inner_borders(rows, width, height, halo=4):
    border = np.zeros((height, width), dtype=bool)
    for w in (w for row in rows for w in row):
        r0, c0, r1, c1 = int(w.row_off), int(w.col_off), int(w.row_off + w.height), int(w.col_off + w.width)
        for r in (r for r in (r0, r1) if 0 < r < height):
            border[r - halo:r + halo, c0:c1] = True
        for c in (c for c in (c0, c1) if 0 < c < width):
            border[r0:r1, c - halo:c + halo] = True
    return border


def test_windowed_prediction_is_seamless(demo_trained, atlanta_image, tmp_path):
    """Against one whole-image forward pass: near-identical masks, disagreements not denser along window borders.

    What remains is the network's context (its receptive field spans whole windows), not seams: measured here
    IoU 0.993 and border density 0.35-0.85x elsewhere, over two training seeds.
    """
    image_path = _mosaic(atlanta_image, tmp_path / "mosaic.tif")
    out = tmp_path / "pred.tif"
    assert run("predict", demo_trained, image_path, "-o", out).exit_code == 0
    predictor = Predictor.load(demo_trained, "cpu")
    with rasterio.open(image_path) as src, rasterio.open(out) as pred:
        image = predictor.model_file.normalization.apply(src.read())
        windowed = pred.read(1)
        width, height = src.width, src.height
    padded = np.pad(image, ((0, 0), (0, -height % 32), (0, -width % 32)), mode="reflect")[None]
    whole = predictor.probabilities(padded)[0, :, :height, :width].argmax(0)
    for value in (0, 1):
        inter = ((whole == value) & (windowed == value)).sum()
        union = ((whole == value) | (windowed == value)).sum()
        assert inter / union >= 0.99, (value, inter / union)
    rows = aligned_window_rows(width, height, 1024, 128)
    assert sum(len(r) for r in rows) == 4
    border = _inner_borders(rows, width, height)
    differ = whole != windowed
    assert differ[border].mean() <= differ[~border].mean()


def test_predict_refuses_bad_input_and_keeps_outputs(trained, tmp_path, atlanta_image, nc_image):
    out = tmp_path / "out.tif"
    result = run("predict", trained, nc_image, "-o", out)
    assert result.exit_code == 2 and "1-band image" in result.output and "has 6 band(s)" in result.output
    assert not out.exists()
    result = run("predict", atlanta_image, atlanta_image, "-o", out)
    assert result.exit_code == 2 and "not a landsight model" in result.output
    out.write_bytes(b"keep")
    result = run("predict", trained, atlanta_image, "-o", out)
    assert result.exit_code == 2 and "--overwrite" in result.output and out.read_bytes() == b"keep"
    assert run("predict", trained, nc_image, "-o", tmp_path / "x.tif", "--bands", "4").exit_code == 0


def test_training_resumes_after_an_interruption(tmp_path, atlanta_image, atlanta_labels, monkeypatch):
    import landsight.learn.policy as policy_module

    out = tmp_path / "m.pt"
    args = ["train", atlanta_image, atlanta_labels, "-o", out, "--epochs", "2", "--chips-per-epoch", "8",
            "--chip-size", "128", "--weights", "none", "--encoder", "resnet18"]
    original = policy_module.plot_curves
    calls = []

    def interrupt_in_epoch_two(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        original(*a, **k)

    monkeypatch.setattr(policy_module, "plot_curves", interrupt_in_epoch_two)
    interrupted = CliRunner().invoke(cli, [str(a) for a in args])
    assert interrupted.exit_code == 1 and "Aborted" in interrupted.output  # click's answer to Ctrl-C
    assert (tmp_path / "m.pt.resume.pt").exists() and not out.exists()
    monkeypatch.setattr(policy_module, "plot_curves", original)
    state = torch.load(tmp_path / "m.pt.resume.pt", weights_only=True)
    assert state["epoch"] == 0  # killed while writing epoch 2's curves: the state is epoch 1's, epoch 2 is redone
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert load_model_file(out).training["epochs_run"] == 2
    assert not (tmp_path / "m.pt.resume.pt").exists()


def test_chip_larger_than_image_is_refused(tmp_path, nc_image, nc_labels):
    result = run("train", nc_image, nc_labels, "-o", tmp_path / "m.pt", "--class-field", "label",
                 "--ignore-unlabelled", "--chip-size", "512")
    assert result.exit_code == 2 and "chip size 512 px is larger" in result.output
    assert not (tmp_path / "m.pt").exists()


@pytest.mark.parametrize("image, labels, field, bands", [
    ("nc-landcover/landsat7-2000.tif", "nc-landcover/landcover-polygons.geojson", "label", 6),
    ("sentinel2-coast/s2-crop.tif", "sentinel2-coast/labels.geojson", "class", 4),
])
def test_multispectral_sparse_labels(tmp_path, image, labels, field, bands):
    from tests.conftest import DATA

    model = tmp_path / "m.pt"
    result = run("train", DATA / image, DATA / labels, "-o", model, "--class-field", field, "--ignore-unlabelled",
                 "--chip-size", "64", "--epochs", "2", "--chips-per-epoch", "16")
    assert result.exit_code == 0, result.output
    assert load_model_file(model).bands.count == bands
    out = tmp_path / "pred.tif"
    assert run("predict", model, DATA / image, "-o", out).exit_code == 0
    with rasterio.open(out) as src:
        values = set(np.unique(src.read(1)))
    assert values <= set(load_model_file(model).classes.values)


def test_train_keeps_a_users_file_named_like_its_curves(tmp_path, atlanta_image, atlanta_labels):
    keep = tmp_path / "m-curves.png"
    keep.write_bytes(b"my own plot")
    result = run("train", atlanta_image, atlanta_labels, "-o", tmp_path / "m.pt", "--epochs", "1")
    assert result.exit_code == 2 and "m-curves.png" in result.output and "--overwrite" in result.output
    assert keep.read_bytes() == b"my own plot" and sorted(p.name for p in tmp_path.iterdir()) == ["m-curves.png"]


def test_class_weights_auto_come_from_the_training_pixels(tmp_path, nc_image, nc_labels):
    model = tmp_path / "m.pt"
    result = run("train", nc_image, nc_labels, "-o", model, "--class-field", "label", "--ignore-unlabelled",
                 "--chip-size", "64", "--epochs", "1", "--chips-per-epoch", "8", "--class-weights", "auto",
                 "--validation", "blocks")
    assert result.exit_code == 0, result.output
    mf = load_model_file(model)
    assert mf.training["config"]["class_weights"] == "auto"
    # oracle: the whole mask in memory, pixels of the validation blocks left out
    mask = tmp_path / "mask.tif"
    rasterize_labels(nc_image, nc_labels, mask, mf.classes, "label", background=False)
    with rasterio.open(mask) as src:
        channels = mf.classes.index_lut()[src.read(1)]
        split = blocked_split(src.width, src.height, 64, 0.2, 0)
    for col0, row0, col1, row1 in split.val_boxes:
        channels[row0:row1, col0:col1] = IGNORE_VALUE
    counts = np.bincount(channels[channels != IGNORE_VALUE], minlength=len(mf.classes))
    assert counts.sum() > 0 and split.val_boxes
    assert mf.training["class_weights"] == pytest.approx(class_weights(counts.astype(np.float32)).tolist())
    assert np.argmax(mf.training["class_weights"]) == np.argmin(np.where(counts > 0, counts, counts.max()))
