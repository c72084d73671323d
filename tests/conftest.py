"""Shared fixtures: a CLI runner and paths to the real sample data kept in the repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from landsight.cli.main import cli

DATA = Path(__file__).parent / "data"
SAMPLE = Path(__file__).parent.parent / "landsight" / "sample_data"


@pytest.fixture
def runner() -> CliRunner:
    """Click's runner; stderr is kept separate from stdout."""
    return CliRunner()


@pytest.fixture
def invoke(runner: CliRunner):
    """Run `landsight ARGS...` and return the result (no exception catching beyond click's)."""

    def _invoke(*args: str):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)

    return _invoke


QUICK_TRAIN = ["--epochs", "3", "--chips-per-epoch", "16", "--chip-size", "128", "--batch-size", "8",
               "--model", "network"]
"""Training flags for a small but real building network (about 15 s on 2 cores; three epochs lose to the pixel
baseline, which `--model auto` would keep)."""


@pytest.fixture(scope="session")
def atlanta_model(tmp_path_factory) -> Path:
    """A building model trained with QUICK_TRAIN on the Atlanta sample, once per test session (read-only)."""
    out = tmp_path_factory.mktemp("model") / "buildings.pt"
    result = CliRunner().invoke(cli, [str(a) for a in ("train", SAMPLE / "atlanta.tif",
                                                       SAMPLE / "atlanta-buildings.geojson", "-o", out,
                                                       "--class-name", "building", *QUICK_TRAIN)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def atlanta_image() -> Path:
    return SAMPLE / "atlanta.tif"


@pytest.fixture
def atlanta_labels() -> Path:
    return SAMPLE / "atlanta-buildings.geojson"


@pytest.fixture
def nc_image() -> Path:
    return DATA / "nc-landcover" / "landsat7-2000.tif"


@pytest.fixture
def nc_labels() -> Path:
    return DATA / "nc-landcover" / "landcover-polygons.geojson"


@pytest.fixture
def atlanta_mask(invoke, tmp_path, atlanta_image, atlanta_labels) -> Path:
    """The Atlanta OSM buildings rasterized onto the image grid (0 background, 1 building)."""
    out = tmp_path / "mask.tif"
    result = invoke("rasterize", atlanta_image, atlanta_labels, "-o", out, "--class-name", "building")
    assert result.exit_code == 0, result.output
    return out
