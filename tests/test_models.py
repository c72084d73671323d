"""Model registry, shipped pretrained weights, and MODEL files."""

import pytest
import torch

from landsight.errors import CheckpointError, ConfigError
from landsight.imagery.bands import BandSpec, Normalization
from landsight.labels.classes import ClassTable
from landsight.models.model_file import ModelFile, load_model_file
from landsight.models.pretrained import imagenet_weights_file
from landsight.models.registry import create_model


def test_imagenet_weights_load_into_the_encoder_in_order():
    shipped = list(torch.load(imagenet_weights_file("tf_efficientnet_lite0"), weights_only=True).values())
    model = create_model("unet", "tf_efficientnet_lite0", 3, 2, weights="imagenet")
    encoder = model.encoder.model.state_dict()
    assert torch.equal(encoder["conv_stem.weight"], shipped[0])
    assert torch.equal(encoder["blocks.0.0.conv_dw.weight"], shipped[6])


@pytest.mark.parametrize("bands", [1, 4, 6])
def test_rgb_stem_is_adapted_to_any_band_count(bands):
    model = create_model("unet", "tf_efficientnet_lite0", bands, 3, weights="imagenet")
    stem = model.encoder.model.conv_stem.weight
    assert stem.shape[1] == bands
    assert stem.abs().sum() > 0
    assert model(torch.zeros(1, bands, 64, 64)).shape == (1, 3, 64, 64)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ConfigError, match="choose from"):
        create_model("segformer9000", "resnet18", 3, 2)
    with pytest.raises(ConfigError, match="unknown encoder"):
        create_model("unet", "not_a_net", 3, 2)
    with pytest.raises(ConfigError, match="no shipped ImageNet weights"):
        create_model("unet", "resnet18", 3, 2, weights="imagenet")


def test_weights_of_another_architecture_are_refused(tmp_path):
    other = tmp_path / "resnet.pth"
    torch.save(create_model("unet", "resnet18", 3, 2).encoder.model.state_dict(), other)
    with pytest.raises(CheckpointError, match="tf_efficientnet_lite0"):
        create_model("unet", "tf_efficientnet_lite0", 3, 2, weights=str(other))


def _model_file():
    model = create_model("unet", "resnet18", 2, 2)
    return ModelFile("unet", "resnet18", BandSpec((1, 2), ("red", "nir")), Normalization((1.0, 2.0), (3.0, 4.0)),
                     ClassTable.from_names(["building"], background=True), 64, model.state_dict())


def test_model_file_round_trip(tmp_path):
    path = tmp_path / "m.pt"
    original = _model_file()
    digest = original.save(path)
    loaded = load_model_file(path)
    assert loaded.sha256 == digest and len(digest) == 64
    assert loaded.bands.names == ("red", "nir")
    assert loaded.classes.names == ["background", "building"]
    x = torch.randn(1, 2, 64, 64)
    torch.testing.assert_close(loaded.build()(x), original.build()(x), rtol=0, atol=0)


def test_non_model_files_are_refused(tmp_path, atlanta_image):
    with pytest.raises(CheckpointError, match="not a landsight model"):
        load_model_file(atlanta_image)
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    with pytest.raises(CheckpointError, match="not a landsight model"):
        load_model_file(plain)
    with pytest.raises(CheckpointError, match="not found"):
        load_model_file(tmp_path / "missing.pt")
