"""`predict_raster`: a MODEL over a whole raster with overlapping windows, bounded memory, provenance tags."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from rasterio.io import DatasetReader, DatasetWriter
from rasterio.windows import Window
from rich.progress import Progress

from landsight import __version__
from landsight.errors import ConfigError
from landsight.imagery.bands import BandSpec, Normalization, check_bands_match
from landsight.imagery.io import (create_raster, open_raster, output_profile, read_valid_mask, read_window,
                                  to_cog)
from landsight.imagery.windows import window_rows
from landsight.labels.classes import IGNORE_VALUE
from landsight.outputs import atomic_path, check_output
from landsight.predict.blend import StripBlender
from landsight.predict.predictor import Predictor

log = logging.getLogger(__name__)

PROBABILITY_SCALE = 250
"""Probabilities are stored as uint8 round(p * 250); 255 is nodata."""


def _multiple_of_32(n: int) -> int:
    return -(-n // 32) * 32


def read_batch(src: DatasetReader, windows: Sequence[Window], spec: BandSpec, normalization: Normalization) -> np.ndarray:
    """Normalized (N, C, H, W) float32 for same-sized `windows`, padded by reflection to multiples of 32 px.

    Nodata pixels become 0 (the band mean after normalization).
    """
    h, w = int(windows[0].height), int(windows[0].width)
    batch = np.zeros((len(windows), spec.count, _multiple_of_32(h), _multiple_of_32(w)), dtype=np.float32)
    for i, window in enumerate(windows):
        data = normalization.apply(read_window(src, window, list(spec.indexes)))
        data[:, ~read_valid_mask(src, window, list(spec.indexes))] = 0.0
        pad = ((0, 0), (0, batch.shape[2] - h), (0, batch.shape[3] - w))
        batch[i] = np.pad(data, pad, mode="reflect" if min(h, w) > 1 else "edge")
    return batch


def _batches(rows: list[list[Window]], batch_size: int) -> Iterator[tuple[int, list[Window]]]:
    """(row index, windows) in batches that never span two window rows."""
    for r, row in enumerate(rows):
        for start in range(0, len(row), batch_size):
            yield r, row[start:start + batch_size]


def provenance_tags(predictor: Predictor, spec: BandSpec, window: int, overlap: int, image: str) -> dict[str, str]:
    """GeoTIFF tags saying which model, bands, normalization and window scheme produced an output."""
    mf = predictor.model_file
    return {
        "landsight_version": __version__, "model_sha256": mf.sha256, "model_arch": f"{mf.arch}/{mf.encoder}",
        "bands": json.dumps({"model": mf.bands.to_dict(), "image": spec.to_dict()}),
        "normalization": json.dumps(mf.normalization.to_dict()), "classes": json.dumps(mf.classes.to_list()),
        "tile_scheme": json.dumps({"window": window, "overlap": overlap, "blend": "linear-ramp"}),
        "source_image": str(image),
    }


def _write_strip(dst: DatasetWriter, src: DatasetReader, spec: BandSpec, strip: Window, probs: np.ndarray,
                 values: np.ndarray, probabilities: bool) -> None:
    valid = read_valid_mask(src, strip, list(spec.indexes))
    if probabilities:
        out = np.round(probs * PROBABILITY_SCALE).astype(np.uint8)
        out[:, ~valid] = IGNORE_VALUE
        dst.write(out, window=strip)
    else:
        classes = values[probs.argmax(axis=0)]
        classes[~valid] = IGNORE_VALUE
        dst.write(classes, 1, window=strip)


def predict_raster(model: str | Path | Predictor, image: str | Path, output: str | Path, overlap: int = 64,
                   batch_size: int = 4, device: str = "auto", probabilities: bool = False,
                   bands: Sequence[int] | None = None, overwrite: bool = False, window: int = 1024,
                   cog: bool = True) -> dict[str, Any]:
    """Predict `image` with `model` into a tiled, compressed (COG) GeoTIFF; returns a summary.

    The network is fully convolutional, so it runs on `window` px windows (larger than its training chips, which
    costs less per pixel); neighbours overlap by `overlap` px and are blended, so no seams appear at window edges.
    Memory holds one row of windows over the raster width, never the whole raster.
    """
    check_output(output, overwrite)
    predictor = model if isinstance(model, Predictor) else Predictor.load(model, device)
    if window % 32 or window < 32:
        raise ConfigError(f"--window {window} must be a positive multiple of 32 px")
    if not 0 <= overlap < window // 2:
        raise ConfigError(f"--overlap {overlap} must be >= 0 and less than half the window ({window} px)")
    classes = predictor.model_file.classes
    with open_raster(image) as src:
        spec = check_bands_match(predictor.model_file.bands, src, bands)
        rows = window_rows(src.width, src.height, window, overlap)
        count = len(classes) if probabilities else 1
        profile = output_profile(src, count, "uint8", IGNORE_VALUE)
        tags = provenance_tags(predictor, spec, window, overlap, str(image))
        n_windows = sum(len(r) for r in rows)
        with atomic_path(output, overwrite) as final_tmp:
            work = final_tmp.with_name(final_tmp.name + ".strips.tif") if cog else final_tmp
            try:
                with create_raster(work, profile) as dst:
                    _describe(dst, classes, probabilities, tags)
                    _run(predictor, src, dst, spec, rows, window, overlap, batch_size, probabilities)
                if cog:
                    to_cog(work, final_tmp)
            finally:
                if cog:
                    work.unlink(missing_ok=True)
    log.info("predicted %d windows of %d px over %s", n_windows, window, image)
    return {"windows": n_windows, "window": window, "overlap": overlap, "output": str(output), **tags}


def _describe(dst: DatasetWriter, classes: Any, probabilities: bool, tags: dict[str, str]) -> None:
    dst.update_tags(**tags)
    if probabilities:
        for i, name in enumerate(classes.names, start=1):
            dst.set_band_description(i, f"p({name})")
        dst.scales = [1 / PROBABILITY_SCALE] * len(classes)
    else:
        dst.set_band_description(1, "class")
        dst.write_colormap(1, classes.colormap())


def _run(predictor: Predictor, src: DatasetReader, dst: DatasetWriter, spec: BandSpec, rows: list[list[Window]],
         window: int, overlap: int, batch_size: int, probabilities: bool) -> None:
    """Read the next batch in a thread while the model runs on the current one; flush rows as they finish."""
    classes = predictor.model_file.classes
    values = classes.value_lut()
    blender = StripBlender(src.width, src.height, window, len(classes), overlap)
    normalization = predictor.model_file.normalization
    batches = list(_batches(rows, batch_size))
    with ThreadPoolExecutor(max_workers=1) as reader, Progress(transient=True) as progress:
        task = progress.add_task("predicting", total=sum(len(r) for r in rows))
        pending = reader.submit(read_batch, src, batches[0][1], spec, normalization)
        for i, (r, windows) in enumerate(batches):
            batch = pending.result()
            if i + 1 < len(batches):
                pending = reader.submit(read_batch, src, batches[i + 1][1], spec, normalization)
            probs = predictor.probabilities(batch)
            for win, p in zip(windows, probs, strict=True):
                blender.add(win, p[:, :int(win.height), :int(win.width)])
            progress.advance(task, len(windows))
            if i + 1 == len(batches) or batches[i + 1][0] != r:
                next_top = int(rows[r + 1][0].row_off) if r + 1 < len(rows) else src.height
                for strip, blended in blender.flush(next_top):
                    _write_strip(dst, src, spec, strip, blended, values, probabilities)
