"""The one training core (landsight.learn) drives both tasks: an interrupted run resumes to the same weights, bf16
autocast, time budgets and early stopping work alike for segmentation and chip classification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from landsight.classify.fit import ClassificationTask, TensorData, Trial
from landsight.classify.network import create_classifier
from landsight.classify.rules import ChipGrid, CloudRule, chips_from_cloud_mask
from landsight.config import TrainConfig
from landsight.imagery.normalize import fit_normalization, normalize
from landsight.labels.classes import ClassTable
from landsight.learn.fit import FitResult, FitSettings, fit
from landsight.learn.task import Task
from landsight.models.registry import create_model
from landsight.train.prepare import prepare_training_data
from landsight.train.task import SegmentationTask
from tests.conftest import DATA, SAMPLE

TRIAL = Trial("resnet18", 1e-3, None)


@pytest.fixture(scope="module")
def cloud_data() -> TensorData:
    """Real Landsat-8 chips (32 px) labelled clear/cloudy by the QA band, normalized, split 3:1."""
    folder = DATA / "landsat8-clouds"
    chips = chips_from_cloud_mask(folder / "l8-crop.tif", folder / "l8-bqa-crop.tif", CloudRule(), ChipGrid(32, 48))
    x = torch.from_numpy(normalize(chips.images, "dataset", fit_normalization(chips.images)))
    y = torch.from_numpy(chips.targets)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(0))
    cut = len(x) * 3 // 4
    return TensorData(x[order[:cut]], y[order[:cut]], x[order[cut:]], y[order[cut:]], multi_label=False)


@pytest.fixture(scope="module")
def building_data(tmp_path_factory: pytest.TempPathFactory):
    """Chips of the Atlanta sample and its OSM buildings, with the config to train a small network on them."""
    config = TrainConfig(arch="fpn", encoder="mobilenetv3_small_050", weights=None, chip_size=64, epochs=3,
                         chips_per_epoch=8, batch_size=4)
    table = ClassTable.from_names(["building"], background=True)
    data = prepare_training_data([(str(SAMPLE / "atlanta.tif"), str(SAMPLE / "atlanta-buildings.geojson"))],
                                 tmp_path_factory.mktemp("work") / "w", table, None, True, config)
    return data, config


def _classifier(data: TensorData) -> tuple[torch.nn.Module, Task]:
    torch.manual_seed(0)
    model = create_classifier("classifier", TRIAL.backbone, data.x_train.shape[1], data.num_classes)
    return model, ClassificationTask(data, TRIAL, 3, 16, 0, "loss")


def _segmenter(building_data) -> tuple[torch.nn.Module, Task]:
    data, config = building_data
    torch.manual_seed(0)
    model = create_model(config.arch, config.encoder, data.bands.count, len(data.classes))
    return model, SegmentationTask(data, config)


TASKS = {"classification": lambda cloud, building: _classifier(cloud),
         "segmentation": lambda cloud, building: _segmenter(building)}


@pytest.fixture(params=sorted(TASKS))
def make_task(request, cloud_data, building_data):
    """A fresh (network, task) pair, the same each call, of each task in turn."""
    return lambda: TASKS[request.param](cloud_data, building_data)


def _train(make_task, **settings) -> FitResult:
    model, task = make_task()
    return fit(model, task, FitSettings(**{"max_epochs": 3, "patience": 10, "progress": False, **settings}))


def _same_weights(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_an_interrupted_run_resumes_to_the_same_weights(make_task, tmp_path: Path) -> None:
    whole = _train(make_task)
    resume = tmp_path / "run.resume.pt"

    def interrupt_in_epoch_two(row: dict) -> None:
        if row["epoch"] == 2:
            raise KeyboardInterrupt

    model, task = make_task()
    with pytest.raises(KeyboardInterrupt):
        fit(model, task, FitSettings(3, 10, resume_path=resume, run_key="k", progress=False), interrupt_in_epoch_two)
    assert torch.load(resume, weights_only=True)["epoch"] == 0  # epoch 1's state: epoch 2 is done again
    resumed = _train(make_task, resume_path=resume, run_key="k")
    assert len(resumed.history) == 3 and resumed.best_epoch == whole.best_epoch
    assert _same_weights(resumed.state_dict, whole.state_dict)
    drop = {"seconds", "lr"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in resumed.history] == \
        [{k: v for k, v in r.items() if k not in drop} for r in whole.history]


def test_a_resume_state_of_another_run_is_refused(make_task, tmp_path: Path) -> None:
    resume = tmp_path / "run.resume.pt"
    _train(make_task, max_epochs=1, resume_path=resume, run_key="first")
    with pytest.raises(Exception, match="other settings or data"):
        _train(make_task, resume_path=resume, run_key="second")
    assert len(_train(make_task, max_epochs=1, resume_path=resume, run_key="second", restart=True).history) == 1


def test_bf16_autocast_runs_the_network_in_bf16(make_task) -> None:
    model, task = make_task()
    dtypes: set[torch.dtype] = set()
    model.register_forward_hook(lambda module, inputs, output: dtypes.add(output.dtype))
    result = fit(model, task, FitSettings(1, 10, precision="bf16", progress=False))
    assert dtypes == {torch.bfloat16}
    assert np.isfinite(result.history[0]["train_loss"]) and result.state_dict


def test_the_time_budget_ends_training_after_its_epoch(make_task) -> None:
    result = _train(make_task, max_epochs=5, budget_s=1e-3)
    assert result.stopped == "time limit" and len(result.history) == 1 and result.best_epoch == 1


def test_early_stopping_after_patience_epochs_without_gain(make_task, monkeypatch) -> None:
    model, task = make_task()
    monkeypatch.setattr(task, "rank", lambda *args: (0.5,))  # no epoch beats the first
    result = fit(model, task, FitSettings(6, 2, progress=False))
    assert result.stopped == "early stop" and len(result.history) == 3 and result.best_epoch == 1
