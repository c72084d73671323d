"""Fixtures for the classification tests: real Landsat-8 chips and small models trained once per session.

Models are trained through the real CLI with a short search (one backbone, two or three epochs): enough to check
what the commands write and how the pieces fit, not accuracy (the slow tests measure that).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from click.testing import CliRunner
from rasterio.errors import NotGeoreferencedWarning

from landsight.classify.rules import ChipGrid, CloudRule, chips_from_cloud_mask
from landsight.cli.main import cli

DATA = Path(__file__).parent.parent / "data"
L8 = DATA / "landsat8-clouds" / "l8-crop.tif"
L8_QA = DATA / "landsat8-clouds" / "l8-bqa-crop.tif"
BIGEARTHNET = DATA / "bigearthnet-examples"
NC_IMAGE = DATA / "nc-landcover" / "landsat7-2000.tif"
NC_LABELS = DATA / "nc-landcover" / "landcover-polygons.geojson"
QUICK = ["--budget", "90s", "--max-epochs", "2", "--no-lr-search", "--model", "network"]


def run(*args: object):
    """`landsight ARGS...` through click's runner (exceptions propagate)."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def write_chip(path: Path, data: np.ndarray, bounds: tuple[float, float, float, float] | None = None,
               crs: str | None = None) -> None:
    """A chip file: GeoTIFF (georeferenced when `bounds` are given) or PNG/JPEG by suffix."""
    profile = {"driver": "GTiff" if path.suffix == ".tif" else ("PNG" if path.suffix == ".png" else "JPEG"),
               "width": data.shape[2], "height": data.shape[1], "count": data.shape[0], "dtype": data.dtype.name}
    if bounds is not None:
        profile.update(crs=crs, transform=rasterio.transform.from_bounds(*bounds, data.shape[2], data.shape[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)


@pytest.fixture(scope="session")
def chip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clear/ and cloudy/ folders of real 32 px georeferenced GeoTIFF chips cut from the Landsat-8 crop."""
    root = tmp_path_factory.mktemp("chips")
    chips = chips_from_cloud_mask(L8, L8_QA, CloudRule(), ChipGrid(32, 48))
    for image, label, box, chip_id in zip(chips.images, chips.labels, chips.boxes, chips.ids, strict=True):
        name = chip_id.split("#")[1].replace(",", "_")
        write_chip(root / chips.classes[label] / f"{name}.tif", image.astype(np.uint16), tuple(box), chips.crs[0])
    return root


@pytest.fixture(scope="session")
def gate_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cloud gate trained with `landsight cloud train` on the Landsat-8 crop and its QA band (32 px chips)."""
    out = tmp_path_factory.mktemp("gate") / "gate.pt"
    result = run("cloud", "train", L8, "--cloud-mask", L8_QA, "--chip-size", "32", "--stride", "48", "--band-names",
                 "blue,green,red,nir", "--backbones", "tf_efficientnet_lite0", "-o", out, *QUICK)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="session")
def folder_model(chip_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A classifier trained with `landsight classify train` on the class folders of real chips."""
    out = tmp_path_factory.mktemp("folder") / "folders.pt"
    result = run("classify", "train", chip_dir, "--backbones", "resnet18", "-o", out, *QUICK)
    assert result.exit_code == 0, result.output
    return out
