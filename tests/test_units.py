"""Physical band units (issue 15): scale/offset from file metadata, STAC or the user, applied before normalization,
recorded in the model, checked at predict time; a cloud gate trained in reflectance on Landsat-8 runs on Sentinel-2.
Real pixels: the Landsat-8 cloud crop (uint16 DN) and the Sentinel-2 L1C crop (uint16 reflectance x 10000)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from landsight.acquire.remote import BandSource, build_vrt
from landsight.errors import RasterError
from landsight.imagery.bands import (
    BandSpec,
    BandUnits,
    band_spec_for,
    check_bands_match,
    check_units,
    read_bands,
)
from landsight.models.model_file import load_model_file
from tests.classify.conftest import L8, L8_QA, QUICK, run

S2 = Path(__file__).parent / "data" / "sentinel2-coast" / "s2-crop.tif"
L8_SCALING = ["--scale", "2e-5", "--offset=-0.1"]  # Landsat-8 Level-1 DN -> top-of-atmosphere reflectance


def _with_metadata(tmp_path: Path, scales: list[float], offsets: list[float], units: str | None = None) -> Path:
    """A 64 px crop of the Landsat-8 scene whose bands carry GDAL scale/offset (and unit type) metadata."""
    path = tmp_path / "l8-scaled.tif"
    with rasterio.open(L8) as src:
        data = src.read(window=Window(0, 0, 64, 64))
        profile = {**src.profile, "width": 64, "height": 64,
                   "transform": src.window_transform(Window(0, 0, 64, 64))}
        descriptions = src.descriptions
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)
        dst.scales, dst.offsets = scales, offsets
        if units:
            dst.units = [units] * 4
        dst.descriptions = descriptions
    return path


def test_file_metadata_round_trips_through_the_band_spec(tmp_path):
    path = _with_metadata(tmp_path, [2e-5] * 4, [-0.1] * 4, "reflectance")
    with rasterio.open(path) as src:
        spec = band_spec_for(src)
    assert spec.scales == (2e-5,) * 4 and spec.offsets == (-0.1,) * 4 and spec.units == "reflectance"
    assert BandSpec.from_dict(spec.to_dict()) == spec


def test_user_values_win_over_file_metadata(tmp_path):
    path = _with_metadata(tmp_path, [2e-5] * 4, [-0.1] * 4)
    with rasterio.open(path) as src:
        spec = band_spec_for(src, [1, 2], BandUnits((1e-4,), (0.0, 0.5), "reflectance"))
    assert spec.scales == (1e-4, 1e-4) and spec.offsets == (0.0, 0.5) and spec.units == "reflectance"
    with rasterio.open(path) as src, pytest.raises(RasterError, match=r"3 values .* for 2 selected band"):
        band_spec_for(src, [1, 2], BandUnits((1.0, 2.0, 3.0)))


def test_physical_values_match_a_hand_computation_on_real_pixels():
    with rasterio.open(L8) as src:
        raw = src.read(window=Window(100, 200, 8, 8)).astype(np.float64)
        spec = band_spec_for(src, None, BandUnits((2e-5,), (-0.1,)))
        physical, valid = read_bands(src, Window(100, 200, 8, 8), spec)
    assert valid.all() and physical.dtype == np.float32
    np.testing.assert_allclose(physical, 2e-5 * raw - 0.1, rtol=1e-6, atol=1e-7)
    assert 0 < physical.min() and physical.max() < 1.2  # top-of-atmosphere reflectance


def test_old_band_dicts_load_as_raw_digital_numbers():
    spec = BandSpec.from_dict({"indexes": [1, 2], "names": ["red", "nir"], "source_count": 4})
    assert spec.scales == (1.0, 1.0) and spec.offsets == (0.0, 0.0) and spec.units == "dn" and not spec.scaled
    data = np.arange(8, dtype=np.uint16).reshape(2, 2, 2)
    assert spec.physical(data) is data  # unscaled bands are read exactly as before


def test_a_model_in_digital_numbers_refuses_scaled_or_reflectance_bands():
    model = BandSpec((1, 2), ("red", "nir"))
    check_units(model, BandSpec((1, 2), ("red", "nir")), "img.tif")
    with pytest.raises(RasterError, match=r"band 2 \(nir\) of img.tif .* scale 0.0001 .* `scale` 1 and `offset` 0"):
        check_units(model, BandSpec((1, 2), ("red", "nir"), 0, (1.0, 1e-4), (0.0, 0.0)), "img.tif")
    with pytest.raises(RasterError, match=r"band 1 \(red\) of img.tif is in reflectance"):
        check_units(model, BandSpec((1, 2), ("red", "nir"), units="reflectance"), "img.tif")


def test_a_model_in_reflectance_refuses_raw_sentinel2_values_and_takes_scaled_ones():
    model = BandSpec((1, 2, 3, 4), ("blue", "green", "red", "nir"), 4, units="reflectance")
    with rasterio.open(S2) as src:
        with pytest.raises(RasterError, match=r"band 1 \(blue\) of .*s2-crop.tif has values up to \d+ with no scale"
                                              r".*scale 1e-4 for Sentinel-2"):
            check_bands_match(model, src, [1, 2, 3, 4])
        spec = check_bands_match(model, src, [1, 2, 3, 4], BandUnits((1e-4,)))
    assert spec.scales == (1e-4,) * 4


def test_stac_raster_bands_scale_and_offset_reach_the_vrt(tmp_path):
    vrt = build_vrt([BandSource("blue", str(L8), 1, 2e-5, -0.1), BandSource("nir", str(L8), 4)], None,
                    tmp_path / "item.vrt")
    with rasterio.open(vrt) as src:
        assert src.scales == (2e-5, 1.0) and src.offsets == (-0.1, 0.0)
        spec = band_spec_for(src)
        physical, _ = read_bands(src, Window(0, 0, 4, 4), spec)
        raw = src.read(1, window=Window(0, 0, 4, 4)).astype(np.float64)
    np.testing.assert_allclose(physical[0], 2e-5 * raw - 0.1, rtol=1e-6)


@pytest.fixture(scope="module")
def reflectance_gate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cloud gate trained in reflectance on the Landsat-8 crop (Level-1 rescaling), tiny budget."""
    out = tmp_path_factory.mktemp("units") / "gate.pt"
    result = run("cloud", "train", L8, "--cloud-mask", L8_QA, "--chip-size", "32", "--stride", "48",
                 "--band-names", "blue,green,red,nir", *L8_SCALING, "--units", "reflectance",
                 "--backbones", "tf_efficientnet_lite0", "-o", out, *QUICK)
    assert result.exit_code == 0, result.output
    return out


def test_a_reflectance_gate_records_its_units_and_fixed_normalization(reflectance_gate):
    model = load_model_file(reflectance_gate, task="classification")
    assert model.bands.units == "reflectance" and model.bands.scales == (2e-5,) * 4
    assert model.bands.offsets == (-0.1,) * 4
    assert model.normalization.mean == (0.2,) * 4 and model.normalization.std == (0.2,) * 4


def test_the_reflectance_gate_runs_on_sentinel2_reflectance_without_warning(reflectance_gate, tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    out = tmp_path / "s2.csv"
    result = run("cloud", "filter", reflectance_gate, S2, "--bands", "1,2,3,4", "--scale", "1e-4", "-o", out)
    assert result.exit_code == 0, result.output
    assert "144 chip(s)" in result.output
    assert "far outside" not in result.output + caplog.text


def test_the_reflectance_gate_refuses_sentinel2_digital_numbers(reflectance_gate, tmp_path):
    result = run("cloud", "filter", reflectance_gate, S2, "--bands", "1,2,3,4", "-o", tmp_path / "s2.csv")
    assert result.exit_code == 2
    assert "band 1 (blue)" in result.output and "--scale" in result.output and "1e-4" in result.output
    assert not (tmp_path / "s2.csv").exists()


def test_the_reflectance_gate_refuses_landsat8_dn_and_runs_on_them_rescaled(reflectance_gate, tmp_path):
    assert run("cloud", "filter", reflectance_gate, L8, "-o", tmp_path / "a.csv").exit_code == 2
    result = run("cloud", "filter", reflectance_gate, L8, *L8_SCALING, "-o", tmp_path / "b.csv")
    assert result.exit_code == 0, result.output


def test_training_in_reflectance_refuses_unscaled_digital_numbers(tmp_path):
    result = run("cloud", "train", L8, "--cloud-mask", L8_QA, "--chip-size", "32", "--stride", "48",
                 "--units", "reflectance", "-o", tmp_path / "gate.pt", *QUICK)
    assert result.exit_code == 2
    assert "not reflectance" in result.output and "2e-5" in result.output
