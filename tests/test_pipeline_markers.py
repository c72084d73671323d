"""Completion markers: a rerun reuses a raster's outputs only while model, settings and both versions match."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from landsight.errors import ConfigError
from landsight.pipeline import markers, stages, storage
from landsight.pipeline.stages import JobConfig

IMAGE = "/in/scene.tif"


@pytest.fixture(params=["local", "memory"])
def out_dir(request, tmp_path):
    """A local output folder, or one in fsspec's in-memory object store (the code path of s3:// outputs)."""
    if request.param == "local":
        yield str(tmp_path)
        return
    pytest.importorskip("fsspec")
    url = f"memory://landsight-test-{uuid.uuid4().hex}/out"
    yield url
    storage.remove_tree(url)


@pytest.fixture
def finished(out_dir) -> JobConfig:
    """A job whose raster has all its outputs and a marker written by this landsight."""
    config = JobConfig("model.pt", out_dir, window=256, overlap=32)
    outputs = stages.job_outputs(config, "scene")
    for path in (outputs.mask, outputs.polygons, outputs.stats):
        storage.write_text(path, "output")
    marker = markers.CompletionMarker.now(IMAGE, stages.job_facts(config, "sha-a", None), 4, 0,
                                          {"mask": str(outputs.mask)})
    markers.write_marker(outputs.marker, marker)
    return config


def test_unchanged_job_reuses_outputs(finished):
    assert stages.is_complete(finished, IMAGE, "sha-a")
    data = json.loads(storage.read_text(stages.job_outputs(finished, "scene").marker))
    assert data["schema_version"] == markers.MARKER_SCHEMA and data["blend_version"] == markers.BLEND_VERSION
    assert data["landsight_version"] and data["job"]["model_sha256"] == "sha-a" and data["windows"] == 4


def test_changed_blend_version_recomputes(finished, monkeypatch, caplog):
    monkeypatch.setattr(markers, "BLEND_VERSION", markers.BLEND_VERSION + 1)
    with caplog.at_level(logging.INFO, logger="landsight.pipeline.stages"):
        assert not stages.is_complete(finished, IMAGE, "sha-a")
    assert "blend_version" in caplog.text


def test_changed_landsight_version_model_or_settings_recompute(finished, monkeypatch):
    assert not stages.is_complete(finished, IMAGE, "sha-b")
    assert not stages.is_complete(JobConfig("model.pt", finished.out_dir, window=256, overlap=32, simplify=1.0),
                                  IMAGE, "sha-a")
    assert not stages.is_complete(finished, "/elsewhere/scene.tif", "sha-a")
    monkeypatch.setattr(markers, "__version__", "99.0")
    assert not stages.is_complete(finished, IMAGE, "sha-a")


def test_unversioned_marker_is_stale(finished, caplog):
    path = stages.job_outputs(finished, "scene").marker
    old = json.loads(storage.read_text(path))
    for key in ("schema_version", "blend_version", "landsight_version"):
        del old[key]
    storage.write_text(path, json.dumps(old))
    with caplog.at_level(logging.INFO, logger="landsight.pipeline.markers"):
        assert not stages.is_complete(finished, IMAGE, "sha-a")
    assert "older landsight" in caplog.text


def test_missing_output_recomputes(finished):
    storage.remove(stages.job_outputs(finished, "scene").polygons)
    assert not stages.is_complete(finished, IMAGE, "sha-a")


def test_polygon_format_follows_the_crs(tmp_path):
    assert JobConfig("m", str(tmp_path)).polygon_suffix == "geojsonl"
    assert JobConfig("m", str(tmp_path), polygon_crs="EPSG:4326").polygon_suffix == "geojsonl"
    assert JobConfig("m", str(tmp_path), polygon_crs="raster").polygon_suffix == "gpkg"
    assert JobConfig("m", str(tmp_path), polygon_crs="EPSG:3857").polygon_suffix == "gpkg"
    with pytest.raises(ConfigError, match="not a coordinate reference system"):
        JobConfig("m", str(tmp_path), polygon_crs="nowhere")
