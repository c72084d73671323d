"""The report's reference model: logistic regression on per-band chip statistics, on real Landsat-8 chips."""

import numpy as np

from landsight.classify.baseline import PENALTIES, band_statistics, baseline_probs
from landsight.classify.evaluate import evaluate
from landsight.classify.rules import ChipGrid, CloudRule, chips_from_cloud_mask
from landsight.classify.split import split_chips
from tests.classify.conftest import L8, L8_QA


def test_band_statistics_are_per_band_and_skip_nodata():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(3, 2, 8, 8)).astype(np.float32)
    images[1, 0, :4] = np.nan
    stats = band_statistics(images).reshape(3, 2, 7)
    assert np.allclose(stats[0, 1, 0], images[0, 1].mean()) and np.allclose(stats[0, 1, 1], images[0, 1].std())
    assert np.allclose(stats[1, 0, 0], images[1, 0, 4:].mean())  # NaN pixels left out
    assert np.allclose(stats[2, 0, 4], np.percentile(images[2, 0], 50))


def test_brightness_statistics_separate_cloudy_chips():
    chips = chips_from_cloud_mask(L8, L8_QA, CloudRule(), ChipGrid(32), band_names=("blue", "green", "red", "nir"))
    split = split_chips(chips, seed=0)
    probs, fit = baseline_probs(chips, split)
    assert probs.shape == (len(split.test), 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert fit["penalty"] in PENALTIES and fit["val_loss"] > 0
    scores = evaluate(probs, chips.targets[split.test], chips.classes, False)
    assert scores["per_class"]["cloudy"]["f1"] >= 0.8, scores["per_class"]
    again, _ = baseline_probs(chips, split)
    assert np.array_equal(again, probs)
