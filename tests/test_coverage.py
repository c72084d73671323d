"""Valid pixels of sparse GeoTIFFs: absent blocks are counted without decoding them, with the result of a full read."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from landsight.imagery.coverage import ValidCounter, is_absent
from landsight.imagery.io import read_valid_mask
from landsight.imagery.windows import block_windows

SIZE = 1024
WRITTEN = ((0, 0), (512, 256))
"""Corners of the only 256 px blocks written; the other 14 blocks are absent from the file."""


def write_sparse(path, dtype, nodata, count=1, sparse=True):
    """A SIZE px square GeoTIFF of 256 px tiles holding two blocks of 7s, each with a 10 x 10 px hole."""
    profile = {"driver": "GTiff", "width": SIZE, "height": SIZE, "count": count, "dtype": dtype, "nodata": nodata,
               "crs": "EPSG:32616", "transform": from_origin(0, SIZE, 1, 1), "tiled": True, "blockxsize": 256,
               "blockysize": 256, "sparse_ok": sparse}
    with rasterio.open(path, "w", **profile) as dst:
        for col, row in WRITTEN:
            data = np.full((count, 256, 256), 7, dtype=dtype)
            data[:, 100:110, 100:110] = np.nan if dtype == "float32" else (nodata or 0)
            dst.write(data, window=Window(col, row, 256, 256))
    return path


@pytest.mark.parametrize(("dtype", "nodata", "count"), [
    ("uint16", 0, 1),  # absent blocks read as nodata: invalid
    ("uint8", None, 3),  # no nodata: absent blocks read as 0, valid
    ("float32", float("nan"), 1),  # NaN nodata: absent blocks are NaN, invalid
    ("float32", None, 2),  # undeclared: absent blocks are 0 (valid), the NaN holes are not
])
def test_counts_equal_a_full_read(tmp_path, dtype, nodata, count):
    path = write_sparse(tmp_path / "sparse.tif", dtype, nodata, count)
    with rasterio.open(path) as src:
        counter = ValidCounter(src)
        for window in block_windows(Window(0, 0, SIZE, SIZE), 300):  # windows across block edges
            assert counter.count(window) == int(read_valid_mask(src, window).sum()), window
        assert is_absent(src, Window(768, 768, 256, 256)) and is_absent(src, Window(300, 0, 200, 200))
        assert not is_absent(src, Window(700, 200, 100, 100))  # touches the block written at (512, 256)


def test_blocks_are_never_assumed_absent_where_it_cannot_be_told(tmp_path):
    dense = write_sparse(tmp_path / "dense.tif", "uint16", 0, sparse=False)
    with rasterio.open(dense) as src:
        assert not is_absent(src, Window(768, 768, 256, 256))
    masked = write_sparse(tmp_path / "masked.tif", "uint8", None)
    with rasterio.open(masked, "r+") as dst:
        dst.write_mask(np.full((SIZE, SIZE), 255, dtype=np.uint8))  # an internal mask band, stored apart
    with rasterio.open(masked) as src:
        assert not is_absent(src, Window(768, 768, 256, 256))
        assert ValidCounter(src).count(Window(0, 0, SIZE, SIZE)) == SIZE * SIZE
