"""A classification MODEL answers class probabilities as JSON, equal to `Classifier.probabilities` on the image."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
import rasterio

from landsight.classify.classifier import Classifier
from landsight.classify.network import ARCH, create_classifier
from landsight.imagery.bands import BandSpec, Normalization
from landsight.labels.classes import ClassTable
from landsight.models.model_file import ModelFile
from landsight.serve import ServeConfig, create_app
from tests.serve.conftest import SAMPLE, running

RGBN = SAMPLE.parent.parent / "tests" / "data" / "rgbn-time-series" / "rgbn_20160101.tif"


@pytest.fixture(scope="module")
def classifier_model(tmp_path_factory):
    """An untrained 4-band clear/cloudy classifier (seeded): the answer's plumbing, not its accuracy, is tested."""
    import torch

    torch.manual_seed(0)
    network = create_classifier(ARCH, "tf_efficientnet_lite0", 4, 2)
    path = tmp_path_factory.mktemp("classifier") / "gate.pt"
    ModelFile(ARCH, "tf_efficientnet_lite0", BandSpec((1, 2, 3, 4), ("b1", "b2", "b3", "b4"), 4),
              Normalization((90.0,) * 4, (40.0,) * 4), ClassTable.from_names(["cloudy"], background=True), 32,
              network.state_dict(), task="classification").save(path)
    return path


def test_classifier_answers_probabilities_as_json(classifier_model):
    with running(create_app(ServeConfig({"gate": str(classifier_model)}))) as base:
        answer = httpx.post(f"{base}/v1/models/gate/predict", content=RGBN.read_bytes(),
                            headers={"Content-Type": "image/tiff"}, timeout=120)
        png = httpx.post(f"{base}/v1/models/gate/predict", params={"format": "png"}, content=RGBN.read_bytes(),
                         headers={"Content-Type": "image/tiff"}, timeout=60)
        tile = httpx.get(f"{base}/v1/models/gate/tiles/1/0/0.png", params={"source": "none"})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    probs = answer.json()["probabilities"]
    with rasterio.open(RGBN) as src:
        expected = Classifier.load(classifier_model, "cpu").probabilities([src.read().astype(np.float32)])[0]
    assert list(probs) == ["background", "cloudy"]
    assert np.allclose(list(probs.values()), expected, atol=1e-5)
    assert png.status_code == 406 and "JSON" in png.json()["detail"]
    assert tile.status_code == 406 and "segmentation" in tile.json()["detail"]
