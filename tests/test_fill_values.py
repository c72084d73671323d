"""Undeclared nodata: the NC Landsat-7 sample's band 6 holds -32768 where the file declares -99999."""

import logging

import numpy as np
import rasterio
from rasterio.windows import Window

from landsight.imagery.bands import BandSpec, band_spec_for, compute_normalization, read_bands
from landsight.imagery.fill_values import FillValueCheck
from landsight.imagery.windows import block_windows, sliding_windows
from tests.conftest import DATA

NC = DATA / "nc-landcover" / "landsat7-2000.tif"


def test_a_fill_value_far_outside_the_band_is_reported_with_its_share():
    with rasterio.open(NC) as src:
        pixels = src.read(masked=True).astype(np.float64).filled(np.nan)
    check = FillValueCheck([f"b{i}" for i in range(1, 7)])
    for start in range(0, pixels.shape[1], 100):  # streamed in row strips
        check.update(pixels[:, start:start + 100])
    found = check.warnings("nc.tif")
    share = float((pixels[5] == -32768).mean())
    assert share > 0.3 and len(found) == 1
    assert found[0].startswith(f"band 'b6' of nc.tif: {100 * share:.1f} % of the pixels are -32768")
    assert "--nodata -32768" in found[0]


def test_values_within_the_band_are_not_fill():
    check = FillValueCheck(["a", "b"])
    rng = np.random.default_rng(0)
    values = rng.normal(-20000, 8000, size=(2, 10000))
    values[1, :50] = 65535  # saturated, but inside a wide range of other values
    values[1, 50:] = rng.uniform(0, 60000, size=9950)
    values[0, :5] = -32768  # inside the band's spread
    check.update(values)
    check.update(np.empty((2, 0)))  # a window without valid pixels
    assert check.warnings("x") == []


def test_training_statistics_warn_about_the_nc_band_6(caplog):
    with rasterio.open(NC) as src, caplog.at_level(logging.WARNING):
        compute_normalization([(src, list(sliding_windows(src.width, src.height, 128, 0)))], band_spec_for(src))
    assert any("-32768" in r.getMessage() and "band 'b6'" in r.getMessage() for r in caplog.records)


def test_training_statistics_leave_the_fill_value_out_and_the_spec_reads_it_as_nodata():
    with rasterio.open(NC) as src:
        windows = list(block_windows(Window(0, 0, src.width, src.height), 128))  # every pixel once
        normalization, spec = compute_normalization([(src, windows)], band_spec_for(src))
        band6 = src.read(6, masked=True).astype(np.float64).filled(np.nan)
        data, valid = read_bands(src, Window(0, 0, src.width, src.height), spec)
    assert spec.fill_values == (None,) * 5 + (-32768.0,)
    measured = band6[np.isfinite(band6) & (band6 != -32768)]
    assert abs(normalization.mean[5] - measured.mean()) < 1e-6 * abs(measured.mean())
    assert abs(normalization.std[5] - measured.std()) < 1e-6 * measured.std()
    assert np.isnan(data[5][band6 == -32768]).all() and not valid[5][band6 == -32768].any()
    assert valid[0].sum() > valid[5].sum()  # the other bands of those pixels stay valid
    assert BandSpec.from_dict(spec.to_dict()) == spec
