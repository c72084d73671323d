"""Helpers shared by the acquisition tests."""

from pathlib import Path

import pytest


def untrained_model(path: Path, names: tuple[str, ...], mean: tuple[float, ...], std: tuple[float, ...]) -> Path:
    """A seeded, untrained U-Net MODEL file reading bands `names`: deterministic and cheap, for equality checks."""
    torch = pytest.importorskip("torch")
    from landsight.imagery.bands import BandSpec, Normalization
    from landsight.labels.classes import ClassTable
    from landsight.models.model_file import ModelFile
    from landsight.models.registry import create_model

    torch.manual_seed(0)
    net = create_model("unet", "resnet18", len(names), 3)
    spec = BandSpec(tuple(range(1, len(names) + 1)), names, len(names))
    ModelFile("unet", "resnet18", spec, Normalization(mean, std), ClassTable.from_names(["a", "b"], True), 64,
              net.state_dict()).save(path)
    return path
