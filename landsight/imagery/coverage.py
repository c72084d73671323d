"""Where a raster file holds data: blocks absent from a sparse GeoTIFF are known without decoding them.

A GeoTIFF written with `SPARSE_OK=TRUE` stores no bytes for blocks that were never written; GDAL reads them as the
band's nodata value (or 0). A raster whose header says 100,000 x 100,000 px may hold only a few blocks, so counting
its valid pixels must not decode 10^10 pixels of fill.
"""

from __future__ import annotations

import dataclasses

from rasterio.enums import MaskFlags
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landsight.imagery.io import read_valid_mask

_BAND_MASKS = {MaskFlags.nodata, MaskFlags.all_valid}
"""Mask kinds computed from a band's own values: a block absent from the file is then uniformly valid or not."""


def _block_range(offset: int, length: int, block: int) -> range:
    """Indexes of the blocks of size `block` that pixels [offset, offset + length) fall into."""
    return range(offset // block, (offset + length - 1) // block + 1)


def is_absent(src: DatasetReader, window: Window) -> bool:
    """True when every block under `window`, in every band, is absent from a sparse GeoTIFF: all of its pixels hold
    the same fill value. False whenever that cannot be told (other formats, separate masks or alpha bands)."""
    if src.driver != "GTiff" or any(set(flags) - _BAND_MASKS for flags in src.mask_flag_enums):
        return False
    col, row, width, height = (int(v) for v in (window.col_off, window.row_off, window.width, window.height))
    for bidx, (block_h, block_w) in zip(src.indexes, src.block_shapes, strict=True):
        for i in _block_range(row, height, block_h):
            for j in _block_range(col, width, block_w):
                if src.get_tag_item(f"BLOCK_OFFSET_{j}_{i}", "TIFF", bidx=bidx) is not None:
                    return False
    return True


@dataclasses.dataclass
class ValidCounter:
    """Counts the valid pixels of windows of `src` (see `read_valid_mask`) without decoding blocks absent from a
    sparse GeoTIFF: they all hold the same fill value, whose validity is read once (GDAL caches every block it
    fills, so reading a pixel of each absent block would fill memory instead)."""

    src: DatasetReader
    _fill_valid: bool | None = None

    def count(self, window: Window) -> int:
        """Valid pixels of `window`."""
        if not is_absent(self.src, window):
            return int(read_valid_mask(self.src, window).sum())
        if self._fill_valid is None:
            corner = Window(window.col_off, window.row_off, 1, 1)
            self._fill_valid = bool(read_valid_mask(self.src, corner)[0, 0])
        return int(self._fill_valid) * int(window.width) * int(window.height)
