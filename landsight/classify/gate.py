"""The cloud gate: a clear/cloudy classifier behind a small API for pipelines, and the `cloud filter` outputs
(which chips are clear, and a clear-chip mask raster)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landsight.classify.classifier import Classifier
from landsight.classify.inputs import batched, iter_inputs, raster_chips, raster_grid
from landsight.classify.predict import write_csv_rows
from landsight.errors import CheckpointError
from landsight.imagery.bands import BandSpec, BandUnits
from landsight.imagery.io import create_raster, open_raster, output_profile
from landsight.labels.classes import IGNORE_VALUE
from landsight.outputs import atomic_path, check_output

log = logging.getLogger(__name__)

CLOUDY = "cloudy"
CLEAR_VALUE, CLOUDY_VALUE = 1, 0
"""Clear-chip mask values (IGNORE_VALUE where the image has no data)."""


class CloudGate:
    """Decides clear vs cloudy for raw images of the gate model's bands.

    >>> gate = CloudGate.load("cloud.pt")                      # doctest: +SKIP
    >>> gate.cloudy([image_chw_uint16])                        # doctest: +SKIP
    [False]

    Any (C, H, W) size works: images up to twice the chip size are resized to it, larger ones are cut into chip-size
    tiles and are cloudy when any tile is (any cloud counts).
    """

    def __init__(self, classifier: Classifier, threshold: float | None = None) -> None:
        if CLOUDY not in classifier.classes:
            raise CheckpointError(f"{classifier.model_file.sha256[:12]} is not a cloud gate: its classes are "
                                  f"{classifier.classes}; train one with `landsight cloud train`")
        self.classifier = classifier
        self.bands: BandSpec = classifier.bands
        """The bands the gate reads, in order; callers pass raw values of exactly these."""
        self.threshold = classifier.threshold if threshold is None else threshold
        self._cloudy = classifier.classes.index(CLOUDY)

    @classmethod
    def load(cls, path: str | Path, device: str = "auto") -> CloudGate:
        """Load a gate MODEL file (from `landsight cloud train`) once per process or worker."""
        return cls(Classifier.load(path, device))

    @property
    def chip_size(self) -> int:
        """The gate's input chip side in pixels."""
        return self.classifier.chip_size

    def cloud_probability(self, images: Sequence[np.ndarray]) -> list[float]:
        """P(cloudy) per image: the largest over its tiles."""
        return [float(p[:, self._cloudy].max()) for p in self.classifier.tile_probabilities(images)]

    def cloudy(self, images: Sequence[np.ndarray]) -> list[bool]:
        """True for each image the gate holds cloudy."""
        return [p >= self.threshold for p in self.cloud_probability(images)]


def _rows(gate: CloudGate, chips: Sequence[Any], probs: Sequence[float]) -> list[dict[str, Any]]:
    return [{"id": c.id, "col": int(c.window.col_off) if c.window is not None else "",
             "row": int(c.window.row_off) if c.window is not None else "", "p_cloudy": round(p, 5),
             "cloudy": p >= gate.threshold} for c, p in zip(chips, probs, strict=True)]


def filter_chips(gate: CloudGate, inputs: Sequence[str | Path], output: str | Path,
                 indexes: Sequence[int] | None = None, overwrite: bool = False,
                 given: BandUnits | None = None) -> dict[str, int]:
    """Write a CSV saying which chips of `inputs` (files, folders, rasters; scale and offset from `given`, else the
    files') are cloudy; returns the counts."""
    check_output(output, overwrite)
    rows: list[dict[str, Any]] = []
    for batch in batched(iter_inputs(inputs, gate.bands, gate.chip_size, indexes, given)):
        rows += _rows(gate, batch, gate.cloud_probability([c.data for c in batch]))
    write_csv_rows(rows, output, overwrite)
    cloudy = sum(r["cloudy"] for r in rows)
    return {"chips": len(rows), "cloudy": cloudy, "clear": len(rows) - cloudy}


def filter_raster(gate: CloudGate, raster: str | Path, output: str | Path, mask: str | Path | None = None,
                  indexes: Sequence[int] | None = None, overwrite: bool = False,
                  given: BandUnits | None = None) -> dict[str, int]:
    """Classify a raster's chip-size windows (scale and offset from `given`, else the file's): CSV of windows and,
    with `mask`, a raster aligned with the input that is 1 on clear chips, 0 on cloudy chips and IGNORE_VALUE where
    the input has no data."""
    check_output(output, overwrite)
    if mask is not None:
        check_output(mask, overwrite)
    rows: list[dict[str, Any]] = []
    decisions = []
    for batch in batched(raster_chips(raster, gate.bands, gate.chip_size, indexes, given)):
        probs = gate.cloud_probability([c.data for c in batch])
        rows += _rows(gate, batch, probs)
        decisions += [(c.window, p >= gate.threshold) for c, p in zip(batch, probs, strict=True)]
    write_csv_rows(rows, output, overwrite)
    if mask is not None:
        _write_mask(raster, mask, decisions, gate.chip_size, overwrite)
    cloudy = sum(r["cloudy"] for r in rows)
    return {"chips": len(rows), "cloudy": cloudy, "clear": len(rows) - cloudy}


def _write_mask(raster: str | Path, mask: str | Path, decisions: Sequence[tuple[Any, bool]], chip_size: int,
                overwrite: bool) -> None:
    """Write the clear-chip mask window by window (bounded memory)."""
    cloudy = {(int(w.col_off), int(w.row_off)): flag for w, flag in decisions}
    with open_raster(raster) as src:
        profile = output_profile(src, 1, "uint8", IGNORE_VALUE)
        with atomic_path(mask, overwrite) as tmp, create_raster(tmp, profile) as dst:
            for window in raster_grid(src.width, src.height, chip_size):
                flag = cloudy.get((int(window.col_off), int(window.row_off)))
                value = IGNORE_VALUE if flag is None else (CLOUDY_VALUE if flag else CLEAR_VALUE)
                dst.write(np.full((int(window.height), int(window.width)), value, dtype=np.uint8), 1, window=window)
            dst.set_band_description(1, "clear chip (1) / cloudy chip (0)")
            dst.update_tags(chip_size=str(chip_size), values="1=clear,0=cloudy,255=nodata")
