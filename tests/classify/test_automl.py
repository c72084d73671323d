"""The search's time planning, with training replaced by a fake that only spends (pretend) time."""

import pytest
import torch

from landsight.classify import automl
from landsight.classify.automl import SearchSettings, search
from landsight.classify.fit import TensorData, TrialResult
from landsight.errors import ConfigError

COSTS = {"tf_efficientnet_lite0": 2.0, "resnet18": 1.0, "mobilenetv3_large_100": 1.5}


@pytest.fixture
def fake(monkeypatch):
    """A clock that only moves when the fake training "runs", and a score per candidate."""
    clock = {"now": 0.0}
    scores = {"tf_efficientnet_lite0": 0.9, "resnet18": 0.7, "mobilenetv3_large_100": 0.8}

    def run_trial(trial, data, seconds, epochs, patience, device, batch_size, seed, progress, task, choose_on,
                  resume_path=None):
        used = min(seconds, epochs * COSTS[trial.backbone])
        clock["now"] += used
        bonus = 0.05 if trial.lr < 1e-3 else 0.0
        return TrialResult(trial, scores[trial.backbone] + bonus, 0.1, epochs, epochs, used, "max epochs", [], {})

    monkeypatch.setattr(automl.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(automl, "epoch_seconds", lambda b, *a: COSTS[b])
    monkeypatch.setattr(automl, "run_trial", run_trial)
    return clock


DATA = TensorData(torch.zeros(8, 1, 4, 4), torch.eye(2)[[0, 1] * 4], torch.zeros(2, 1, 4, 4), torch.eye(2), False)


def test_budget_is_shared_and_the_best_chosen(fake):
    settings = SearchSettings(100.0, tuple(COSTS), max_epochs=20)
    result = search(DATA, settings, torch.device("cpu"), deadline=100.0)
    tried = [r.trial.label() for r in result.results]
    assert tried[0].startswith("tf_efficientnet_lite0 lr=0.001 (imagenet)")
    assert {r.trial.backbone for r in result.results} == set(COSTS)
    assert result.best.trial.backbone == "tf_efficientnet_lite0" and result.best.trial.lr < 1e-3  # lr search
    assert fake["now"] <= 100.0


def test_a_tight_budget_plans_fewer_backbones_and_ends(fake):
    settings = SearchSettings(30.0, tuple(COSTS), max_epochs=20)
    result = search(DATA, settings, torch.device("cpu"), deadline=30.0)
    assert result.results[0].trial.backbone == "tf_efficientnet_lite0" and fake["now"] <= 30.0
    assert result.results[0].epochs >= 12  # the planned candidate gets about good_epochs


def test_too_small_a_budget_names_a_sufficient_one(fake):
    with pytest.raises(ConfigError, match=r"too small to train anything.*pass `budget` \d+s"):
        search(DATA, SearchSettings(4.0, tuple(COSTS)), torch.device("cpu"), deadline=2.0)


def test_local_weights_pick_their_backbone_and_load_into_any_band_count(tmp_path):
    import timm

    from landsight.classify.automl import resolve_weights
    from landsight.classify.network import create_classifier
    from landsight.models.pretrained import imagenet_weights_file

    shipped = str(imagenet_weights_file("tf_efficientnet_lite0"))
    assert resolve_weights(SearchSettings(60.0, weights=shipped)).backbones == ("tf_efficientnet_lite0",)
    local = tmp_path / "r18.pth"
    reference = timm.create_model("resnet18").state_dict()  # random init: nothing is downloaded
    torch.save(reference, local)
    assert resolve_weights(SearchSettings(60.0, weights=str(local))).backbones == ("resnet18",)
    model = create_classifier("classifier", "resnet18", 6, 3, weights=str(local))
    assert torch.equal(model.state_dict()["layer1.0.conv1.weight"], reference["layer1.0.conv1.weight"])
    assert model.conv1.weight.shape[1] == 6 and model.fc.out_features == 3


def test_choosing_on_validation_loss_prefers_the_lowest_loss(fake, monkeypatch):
    losses = {"tf_efficientnet_lite0": 0.5, "resnet18": 0.2, "mobilenetv3_large_100": 0.3}

    def run_trial(trial, data, seconds, epochs, patience, device, batch_size, seed, progress, task, choose_on,
                  resume_path=None):
        assert choose_on == "loss"
        fake["now"] += min(seconds, epochs * COSTS[trial.backbone])
        return TrialResult(trial, 0.9, losses[trial.backbone], epochs, epochs, 1.0, "max epochs", [], {})

    monkeypatch.setattr(automl, "run_trial", run_trial)
    settings = SearchSettings(100.0, tuple(COSTS), max_epochs=20, lr_search=False, choose_on="loss")
    assert search(DATA, settings, torch.device("cpu"), deadline=100.0).best.trial.backbone == "resnet18"


def test_the_cloud_preset_is_one_pretrained_recipe_that_flags_override():
    from landsight.classify.automl import search_settings

    cloud = search_settings(300.0, "cloud")
    assert cloud.backbones == ("tf_efficientnet_lite0",) and not cloud.lr_search and cloud.choose_on == "loss"
    assert search_settings(300.0, "cloud", backbones=("resnet18",), lr_search=None).backbones == ("resnet18",)
    general = search_settings(300.0, None, max_epochs=None)
    assert general == SearchSettings(300.0) and general.lr_search and general.choose_on == "macro_f1"
    with pytest.raises(ConfigError, match="preset"):
        search_settings(300.0, "fog")
    with pytest.raises(ConfigError, match="choose_on"):
        SearchSettings(300.0, choose_on="accuracy")


def test_batch_norm_statistics_are_the_mean_over_the_epoch():
    from landsight.classify import fit

    norm = torch.nn.BatchNorm2d(1)
    norm.momentum = 0.3
    fit._average_batch_norm(norm)
    norm.train()
    for value in (0.0, 1.0, 5.0):
        norm(torch.full((2, 1, 2, 2), value) + torch.tensor([-0.5, 0.5]).view(2, 1, 1, 1))
    assert norm.running_mean.item() == pytest.approx(2.0)  # not dominated by the last batch (5.0)
