"""The classifier baseline: logistic regression on per-band chip statistics, on real Landsat-8 chips; kept as a
module that reproduces its fit."""

import numpy as np
import torch

from landsight.classify.baseline import PENALTIES, fit_baseline
from landsight.classify.evaluate import evaluate
from landsight.classify.fit import predict_probs
from landsight.classify.rules import ChipGrid, CloudRule, chips_from_cloud_mask
from landsight.classify.split import split_chips
from landsight.imagery.normalize import fit_normalization, normalize
from landsight.models.chip_statistics import ChipStatisticsClassifier, chip_features
from tests.classify.conftest import L8, L8_QA


def test_chip_features_are_per_band_statistics():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.normal(size=(3, 2, 8, 8)).astype(np.float32))
    stats = chip_features(images).reshape(3, 2, 7).numpy()
    band = images[0, 1].numpy()
    assert np.allclose(stats[0, 1, 0], band.mean()) and np.allclose(stats[0, 1, 1], band.std())
    assert np.allclose(stats[2, 0, 4], np.percentile(images[2, 0].numpy(), 50), atol=1e-6)


def test_brightness_statistics_separate_cloudy_chips_and_the_module_reloads():
    chips = chips_from_cloud_mask(L8, L8_QA, CloudRule(), ChipGrid(32), band_names=("blue", "green", "red", "nir"))
    split = split_chips(chips, seed=0)
    x = torch.from_numpy(normalize(chips.images, "dataset", fit_normalization(chips.images[split.train],
                                                                               chips.bands.names)))
    y = torch.from_numpy(chips.targets)
    parts = {s: (x[getattr(split, s)], y[getattr(split, s)]) for s in ("train", "val", "test")}
    model, fit = fit_baseline(*parts["train"], *parts["val"], False)
    assert fit["penalty"] in PENALTIES and fit["val_loss"] > 0
    probs = predict_probs(model, parts["test"][0], False, torch.device("cpu"))
    assert probs.shape == (len(split.test), 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    scores = evaluate(probs, chips.targets[split.test], chips.classes, False)
    assert scores["per_class"]["cloudy"]["f1"] >= 0.8, scores["per_class"]
    again, _ = fit_baseline(*parts["train"], *parts["val"], False)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(),
                                                  strict=True))
    reloaded = ChipStatisticsClassifier(4, 2)
    reloaded.load_state_dict(model.state_dict())
    assert np.array_equal(predict_probs(reloaded.eval(), parts["test"][0], False, torch.device("cpu")), probs)
