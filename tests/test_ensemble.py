"""Ensembles: several seeds trained alike, saved as one MODEL file that predicts their averaged probabilities."""

import dataclasses
import json

import numpy as np
import pytest
import rasterio
import torch

from landsight.imagery.bands import BandSpec, Normalization
from landsight.labels.classes import ClassTable
from landsight.models.ensemble import Ensemble
from landsight.models.model_file import ModelFile, load_model_file
from landsight.models.registry import create_model
from landsight.train import segmentation

TINY = ["--epochs", "1", "--chips-per-epoch", "8", "--chip-size", "128", "--batch-size", "4",
        "--encoder", "resnet18", "--weights", "none", "--class-name", "building"]


def test_ensemble_output_is_the_log_of_the_mean_probability():
    torch.manual_seed(0)
    members = [create_model("unet", "resnet18", 1, 2) for _ in range(3)]
    ensemble = Ensemble(members).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.inference_mode():
        expected = torch.stack([m.eval()(x).softmax(1) for m in members]).mean(0)
        np.testing.assert_allclose(ensemble(x).softmax(1).numpy(), expected.numpy(), atol=1e-5)


def test_trained_ensemble_round_trips_through_info_and_predict(invoke, tmp_path, atlanta_image, atlanta_labels):
    model = tmp_path / "ens.pt"
    result = invoke("train", atlanta_image, atlanta_labels, "-o", model, *TINY, "--ensemble", "2", "--seed", "5")
    assert result.exit_code == 0, result.output
    assert "2 members" in result.output
    assert (tmp_path / "ens-member0-curves.png").exists() and (tmp_path / "ens-member1-curves.png").exists()
    loaded = load_model_file(model)
    assert loaded.members == 2 and [m["seed"] for m in loaded.training["members"]] == [5, 6]
    assert set(loaded.metrics["per_class"]) == {"background", "building"}  # the ensemble, validated as one
    assert "ensemble of 2" in invoke("info", model).output
    assert json.loads(invoke("info", model, "--json").output)["members"] == 2
    out = tmp_path / "p.tif"
    assert invoke("predict", model, atlanta_image, "-o", out, "--probabilities").exit_code == 0
    # the prediction is the mean of the members' probabilities
    members = loaded.build().members
    with rasterio.open(atlanta_image) as src, rasterio.open(out) as pred:
        x = loaded.normalization.apply(src.read(window=((0, 256), (0, 256))))
        got = pred.read(2, window=((64, 192), (64, 192))).astype(float) / 250
    with torch.inference_mode():
        probs = np.mean([m(torch.from_numpy(x)[None]).softmax(1)[0, 1].numpy() for m in members], axis=0)
    assert np.abs(got - probs[64:192, 64:192]).max() < 0.02  # window blending and uint8 rounding aside


def test_interrupted_ensemble_keeps_finished_members(invoke, tmp_path, atlanta_image, atlanta_labels, monkeypatch):
    model = tmp_path / "ens.pt"
    real_fit, calls = segmentation.fit, []

    def fit_then_fail(model_, task, *args, **kw):
        calls.append(task.config.seed)
        if len(calls) == 2:
            raise RuntimeError("killed")
        return real_fit(model_, task, *args, **kw)

    monkeypatch.setattr(segmentation, "fit", fit_then_fail)
    with pytest.raises(RuntimeError, match="killed"):
        invoke("train", atlanta_image, atlanta_labels, "-o", model, *TINY, "--ensemble", "2")
    assert not model.exists() and calls == [0, 1]
    monkeypatch.setattr(segmentation, "fit", lambda *a, **kw: (calls.append(a[1].config.seed), real_fit(*a, **kw))[1])
    assert invoke("train", atlanta_image, atlanta_labels, "-o", model, *TINY, "--ensemble", "2").exit_code == 0
    assert calls == [0, 1, 1]  # member 0 was not trained again
    assert not (tmp_path / "ens.pt.work").exists()
    # the same weights as an uninterrupted run: each member starts from its own seed
    whole = tmp_path / "whole.pt"
    assert invoke("train", atlanta_image, atlanta_labels, "-o", whole, *TINY, "--ensemble", "2").exit_code == 0
    resumed, uninterrupted = load_model_file(model), load_model_file(whole)
    assert resumed.members == 2 and resumed.state_dict.keys() == uninterrupted.state_dict.keys()
    for key, value in resumed.state_dict.items():
        assert torch.equal(value, uninterrupted.state_dict[key]), key


def test_ensemble_weights_must_fit_their_members(tmp_path):
    net = create_model("unet", "resnet18", 1, 2)
    spec, norm = BandSpec((1,), ("pan",)), Normalization((0.0,), (1.0,))
    ModelFile("unet", "resnet18", spec, norm, ClassTable.from_names(["building"], True), 64, net.state_dict(),
              members=2).save(tmp_path / "bad.pt")
    from landsight.errors import CheckpointError

    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_model_file(tmp_path / "bad.pt").build()


def test_multi_label_ensemble_output_is_the_logit_of_the_mean_sigmoid():
    torch.manual_seed(0)
    members = [torch.nn.Linear(4, 3) for _ in range(3)]
    x = torch.randn(5, 4)
    with torch.inference_mode():
        expected = torch.stack([m(x).sigmoid() for m in members]).mean(0)
        np.testing.assert_allclose(Ensemble(members, multi_label=True)(x).sigmoid().numpy(), expected.numpy(),
                                   atol=1e-5)


def test_cloud_gate_ensemble_averages_its_members(tmp_path):
    from landsight.classify.classifier import Classifier
    from landsight.classify.network import ARCH, create_classifier
    from tests.classify.conftest import L8, L8_QA, QUICK, run

    model = tmp_path / "gate.pt"
    result = run("cloud", "train", L8, "--cloud-mask", L8_QA, "--chip-size", "32", "--stride", "48", "--backbones",
                 "resnet18", "--ensemble", "2", "--seed", "3", "-o", model, *QUICK)
    assert result.exit_code == 0, result.output
    gate = load_model_file(model, task="classification")
    assert gate.members == 2 and [m["seed"] for m in gate.training["ensemble"]] == [3, 4]
    classifier = Classifier.load(model, device="cpu")
    chips = np.stack([np.full((4, 32, 32), 9000.0 + 3000 * k, dtype=np.float32) for k in range(3)])
    networks = []
    for k in range(2):
        network = create_classifier(ARCH, "resnet18", 4, 2)
        network.load_state_dict({name.split(".", 2)[2]: v for name, v in gate.state_dict.items()
                                 if name.startswith(f"members.{k}.")})
        networks.append(network.eval())
    single = [Classifier(dataclasses.replace(gate, members=1, state_dict=n.state_dict()), "cpu") for n in networks]
    expected = np.mean([c.probabilities(list(chips)) for c in single], axis=0)
    np.testing.assert_allclose(classifier.probabilities(list(chips)), expected, atol=1e-5)
