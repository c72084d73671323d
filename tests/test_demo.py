"""The demo: every stage on the shipped sample, ending in an HTML page (quick settings; the full run is slow)."""

import json

import pytest

from landsight.config import TrainConfig
from landsight.demo import run_demo, split_bounds
from landsight.errors import OutputExistsError


def test_demo_runs_every_stage_and_writes_the_page(tmp_path, atlanta_image):
    out = tmp_path / "demo"
    quick = TrainConfig(chip_size=128, epochs=1, chips_per_epoch=8, batch_size=4, encoder="resnet18", weights=None,
                        ensemble=2)
    summary = run_demo(out, config=quick, device="cpu")
    west, east = split_bounds(atlanta_image)
    assert west[2] == east[0] and summary.test_bounds == east
    assert summary.metrics_east.window["width"] == 200  # the eastern third, 200 of 600 px
    for name in ("model.pt", "prediction.tif", "buildings-predicted.geojson", "evaluation/metrics.json",
                 "evaluation/confusion_matrix.png", "labels.png", "prediction.png", "polygons.png",
                 "model-member0-curves.png", "model-member1-curves.png", "summary.json"):
        assert (out / name).stat().st_size > 0, name
    page = (out / "index.html").read_text()
    assert "Held-out result" in page and page.count("data:image/png;base64,") == 6
    written = json.loads((out / "summary.json").read_text())
    assert written["model_sha256"] == summary.model_sha256 and written == summary.to_dict()
    assert (written["schema"], written["schema_version"]) == ("landsight-demo", 1)
    assert written["metrics_east"]["schema"] == "landsight-evaluation"
    with pytest.raises(OutputExistsError):
        run_demo(out, config=quick, device="cpu")


@pytest.mark.slow
def test_demo_reaches_building_iou_045_on_the_held_out_third(tmp_path, invoke):
    """Train on the western two thirds, building IoU >= 0.45 on the eastern third, on CPU. The settings were chosen
    on validation in the west (bench/demo_settings.py); the east scored 0.460 with seed 0 (BENCHMARKS.md). The earlier
    0.5 bound belonged to settings picked by looking at the east."""
    result = invoke("demo", "-o", tmp_path / "demo", "--device", "cpu")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["building_iou_east"] >= 0.45, summary["building_iou_east"]
