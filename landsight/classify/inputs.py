"""What a trained classifier reads: chip files, folders of chips (class folders give a known label) and large
rasters cut into a grid of chip-size windows. Streams chips; no torch."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import rasterio
from rasterio import windows as rio_windows
from rasterio.windows import Window

from landsight.classify.chips import IMAGE_SUFFIXES, read_chip, read_chip_window
from landsight.errors import ConfigError, RasterError
from landsight.imagery.bands import BandSpec, BandUnits, check_bands_match, check_units
from landsight.imagery.io import open_raster
from landsight.imagery.windows import block_windows


@dataclasses.dataclass
class InputChip:
    """One chip to classify: raw (C, H, W) values (NaN = nodata), where it came from, its label if known."""

    id: str
    data: np.ndarray
    label: str | None = None
    crs: str | None = None
    bounds: tuple[float, float, float, float] | None = None
    window: Window | None = None
    source: str = ""


def is_large_raster(path: Path, chip_size: int) -> bool:
    """True for a georeferenced raster more than twice the chip size: it is cut into windows, not resized."""
    if path.suffix.lower() not in (".tif", ".tiff", ".vrt", ".jp2"):
        return False
    try:
        with rasterio.open(path) as src:
            return src.crs is not None and max(src.width, src.height) > 2 * chip_size
    except rasterio.errors.RasterioError as exc:
        raise RasterError(f"cannot open {path}: {exc}") from exc


def raster_grid(width: int, height: int, chip_size: int) -> list[Window]:
    """Disjoint chip-size windows tiling a raster (cut short at the right and bottom edges)."""
    return list(block_windows(Window(0, 0, width, height), chip_size))


def _pad(data: np.ndarray, size: int) -> np.ndarray:
    c, h, w = data.shape
    if (h, w) == (size, size):
        return data
    out = np.full((c, size, size), np.nan, dtype=np.float32)
    out[:, :h, :w] = data
    return out


def raster_chips(path: str | Path, bands: BandSpec, chip_size: int, indexes: Sequence[int] | None = None,
                 given: BandUnits | None = None) -> Iterator[InputChip]:
    """Chips of a raster on the `raster_grid` (edge windows padded with nodata), in physical units (scale and offset
    from `given`, else the file); all-nodata windows are skipped."""
    with open_raster(path) as src:
        spec = check_bands_match(bands, src, indexes, given)
        crs = src.crs.to_string()
        for window in raster_grid(src.width, src.height, chip_size):
            data, _ = read_chip_window(src, window, spec)
            if np.isnan(data).all():
                continue
            yield InputChip(f"{path}#{int(window.col_off)},{int(window.row_off)}", _pad(data, chip_size), None, crs,
                            tuple(rio_windows.bounds(window, src.transform)), window, str(path))


def _chip_file(path: Path, bands: BandSpec, label: str | None, indexes: Sequence[int] | None,
               given: BandUnits | None) -> InputChip:
    chip = read_chip(path, indexes, given)
    if chip.data.shape[0] != bands.count:
        if indexes is None and chip.data.shape[0] >= max(bands.indexes):
            chip = read_chip(path, bands.indexes, given)
        else:
            raise RasterError(f"{path} has {chip.data.shape[0]} band(s) but the model reads {bands.count} "
                              f"{list(bands.names)}; pass `bands` with {bands.count} band numbers of the chip")
    check_units(bands, chip.spec, str(path), chip.data)
    return InputChip(str(path), chip.data, label, chip.crs, chip.bounds, None, str(path))


def _folder_files(folder: Path) -> list[tuple[Path, str | None]]:
    """Chip files under `folder`, labelled by their class folder when `folder` is a tree of class folders."""
    subfolders = [p for p in sorted(folder.iterdir()) if p.is_dir() and not p.name.startswith(".")]
    if subfolders:
        return [(f, sub.name) for sub in subfolders for f in sorted(sub.rglob("*"))
                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]
    return [(f, None) for f in sorted(folder.iterdir()) if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES]


def iter_inputs(paths: Sequence[str | Path], bands: BandSpec, chip_size: int, indexes: Sequence[int] | None = None,
                given: BandUnits | None = None) -> Iterator[InputChip]:
    """Every chip of `paths`: chip files, folders of chips, and large rasters cut into windows, in physical units
    (scale and offset from `given`, else each file's metadata)."""
    if not paths:
        raise ConfigError("no inputs given; pass chip files, folders of chips or rasters")
    for entry in paths:
        path = Path(entry)
        if not path.exists():
            raise ConfigError(f"input {path} not found")
        if path.is_dir():
            files = _folder_files(path)
            if not files:
                raise ConfigError(f"{path} holds no chips ({', '.join(IMAGE_SUFFIXES)})")
            for file, label in files:
                yield _chip_file(file, bands, label, indexes, given)
        elif is_large_raster(path, chip_size):
            yield from raster_chips(path, bands, chip_size, indexes, given)
        else:
            yield _chip_file(path, bands, None, indexes, given)


def batched(chips: Iterator[InputChip], size: int = 256) -> Iterator[list[InputChip]]:
    """Lists of up to `size` chips (bounded memory for large inputs)."""
    batch: list[InputChip] = []
    for chip in chips:
        batch.append(chip)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
