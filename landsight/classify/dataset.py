"""Which chips to learn from: one description (`DataSpec`) of every supported source, and `load_chips` that reads it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from landsight.classify.chips import ChipSet
from landsight.classify.folders import load_chip_source
from landsight.classify.rules import CLOUD_CLASSES, ChipGrid, CloudRule, chips_from_cloud_mask, chips_from_labels
from landsight.errors import ConfigError, LabelError
from landsight.imagery.bands import BandUnits


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """A chip source: `data` is a folder of class folders, a CSV of chips, a BigEarthNet folder, or a raster with a
    rule (`cloud_mask` + `cloud_rule`, or `labels` for the majority / present classes). `chip_size` is the cut size
    for rasters and the resize target for chips (default: their most common size). `units`: band scales, offsets
    and units given by the user (else each file's metadata)."""

    data: str
    chip_size: int | None = None
    stride: int | None = None
    cloud_mask: str | None = None
    cloud_rule: CloudRule = dataclasses.field(default_factory=CloudRule)
    labels: str | None = None
    class_field: str | None = None
    min_labelled: float = 0.5
    presence: float | None = None
    bands: tuple[int, ...] | None = None
    band_names: tuple[str, ...] | None = None
    skip_unreadable: bool = False
    units: BandUnits | None = None

    @property
    def is_raster_rule(self) -> bool:
        """True when chips are cut from a raster by a rule."""
        return bool(self.cloud_mask or self.labels)


def load_chips(spec: DataSpec) -> ChipSet:
    """Read or cut the chips `spec` describes."""
    if spec.cloud_mask and spec.labels:
        raise ConfigError("pass either `cloud_mask` or `labels`, not both")
    if spec.is_raster_rule:
        if not Path(spec.data).is_file():
            raise ConfigError(f"{spec.data} must be a raster file when `cloud_mask` or `labels` is given")
        grid = ChipGrid(spec.chip_size or 64, spec.stride)
        if spec.cloud_mask:
            return chips_from_cloud_mask(spec.data, spec.cloud_mask, spec.cloud_rule, grid, spec.bands,
                                         spec.band_names, spec.units)
        assert spec.labels is not None
        return chips_from_labels(spec.data, spec.labels, grid, spec.class_field, spec.min_labelled, spec.presence,
                                 spec.bands, spec.band_names, spec.units)
    chips = load_chip_source(spec.data, spec.chip_size, spec.bands, spec.skip_unreadable, spec.units)
    if spec.band_names:
        if len(spec.band_names) != chips.bands.count:
            raise ConfigError(f"`band_names` gives {len(spec.band_names)} names for {chips.bands.count} band(s)")
        chips.bands = dataclasses.replace(chips.bands, names=tuple(spec.band_names))
    return chips


def check_cloud_classes(chips: ChipSet) -> None:
    """A cloud gate learns exactly the classes clear and cloudy."""
    if sorted(chips.classes) != sorted(CLOUD_CLASSES) or chips.multi_label:
        raise LabelError(f"a cloud gate learns the classes {list(CLOUD_CLASSES)}; the data has {chips.classes}. "
                         "Pass a raster with `cloud_mask`, or folders named clear/ and cloudy/")
