"""`landsight tile` then `landsight mosaic`: a shipped raster round-trips (CRS, grid, values, nodata)."""

import numpy as np
import rasterio

from landsight.acquire.mosaic import tile_files
from tests.conftest import DATA

S2 = DATA / "sentinel2-coast" / "s2-crop.tif"


def _roundtrip(invoke, source, tmp_path, *args):
    tiles, out = tmp_path / "tiles", tmp_path / "mosaic.tif"
    result = invoke("tile", source, "-o", tiles, *args)
    assert result.exit_code == 0, result.output
    result = invoke("mosaic", tiles, "-o", out, *args[2:])
    assert result.exit_code == 0, result.output
    return tiles, out


def test_bilinear_pyramid_round_trips_within_resampling_tolerance(invoke, tmp_path):
    tiles, out = _roundtrip(invoke, S2, tmp_path, "--zoom", "15-16")
    assert {p.parts[-3] for p in tile_files(tiles)} == {"15", "16"}
    with rasterio.open(tiles / "16" / "19000" / "25346.tif") as tile:
        assert tile.crs == "EPSG:3857" and tile.count == 4 and tile.dtypes[0] == "uint16" and tile.shape == (256, 256)
    with rasterio.open(S2) as a, rasterio.open(out) as b:
        assert (b.crs, b.transform, b.shape, b.count, b.dtypes) == (a.crs, a.transform, a.shape, a.count, a.dtypes)
        x, y = a.read().astype(float), b.read().astype(float)
        assert (b.dataset_mask() > 0).all()
    relative = np.abs(x - y) / x
    assert relative.mean() < 0.03  # two bilinear resamplings of 10 m pixels through ~1.9 m tiles
    assert all(np.corrcoef(x[i].ravel(), y[i].ravel())[0, 1] > 0.97 for i in range(4))


def test_nearest_round_trip_is_nearly_exact_and_nodata_is_kept(invoke, tmp_path):
    with rasterio.open(S2) as src:
        data, profile = src.read(), src.profile
    data[:, :100, :120] = 0  # a nodata corner
    source = tmp_path / "holed.tif"
    with rasterio.open(source, "w", **{**profile, "nodata": 0}) as dst:
        dst.write(data)
    _, out = _roundtrip(invoke, source, tmp_path, "--zoom", "16", "--resampling", "nearest")
    with rasterio.open(out) as b:
        assert b.nodata == 0
        y = b.read()
    assert (y[:, :100, :120] == 0).all()
    same = (y == data).all(axis=0)
    assert same.mean() > 0.99


def test_bad_input(invoke, tmp_path):
    result = invoke("tile", S2, "--zoom", "25", "-o", tmp_path / "t")
    assert result.exit_code == 2 and "--zoom 25 is outside 0..24" in result.output
    result = invoke("tile", S2, "--zoom", "16-14", "-o", tmp_path / "t")
    assert result.exit_code == 2 and "empty range" in result.output
    (tmp_path / "empty").mkdir()
    result = invoke("mosaic", tmp_path / "empty", "-o", tmp_path / "m.tif")
    assert result.exit_code == 2 and "holds no tile images" in result.output
    assert not (tmp_path / "t").exists() and not (tmp_path / "m.tif").exists()
