"""Which bands a model reads, in which order, in which physical units, and how their values are normalized."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landsight.errors import RasterError
from landsight.imagery.fill_values import FILL_VALUES, FillValueCheck
from landsight.imagery.io import read_masked

log = logging.getLogger(__name__)

_DEFAULT_NAME = re.compile(r"^b\d+$")


UNITS: tuple[str, ...] = ("dn", "reflectance")
"""Band units a model can be trained in: "dn" (digital numbers, or anything unknown) or "reflectance" (0..1)."""

REFLECTANCE_MAX = 2.0
"""Values above this cannot be reflectance (top-of-atmosphere reflectance of the brightest cloud or snow stays
below about 1.6), so they betray digital numbers that lack their scale and offset."""

REFLECTANCE_NORMALIZATION_MEAN = 0.2
REFLECTANCE_NORMALIZATION_STD = 0.2
"""Fixed normalization of models trained in reflectance, the same for every band and sensor: (r - 0.2) / 0.2 maps
dark water (~0.03) to about -1, vegetation and soil (0.05-0.4) to -0.8..1 and bright cloud or snow (0.5-1) to
1.5-4, so a chip's absolute brightness and band ratios, which make a cloud a cloud, mean the same on every sensor
(dataset statistics would tie them to the training scene)."""

SCALE_EXAMPLES = ("scale 1e-4 for Sentinel-2 L1C/L2A (reflectance x 10000), scale 2e-5 and offset -0.1 for "
                  "Landsat-8/9 Level-1 digital numbers")


@dataclasses.dataclass(frozen=True)
class BandUnits:
    """Physical units of image bands given by the user: per selected band `scales` and `offsets` (physical value =
    raw x scale + offset; one value applies to every band) and the `units` they give ("dn" or "reflectance").
    None fields come from the file's own metadata (GDAL scale/offset/unit type)."""

    scales: tuple[float, ...] | None = None
    offsets: tuple[float, ...] | None = None
    units: str | None = None

    def __post_init__(self) -> None:
        if self.units is not None and self.units not in UNITS:
            raise RasterError(f"`units` {self.units!r}: choose from {list(UNITS)}")
        for what, values in (("scale", self.scales), ("offset", self.offsets)):
            if values is not None and not all(np.isfinite(v) for v in values):
                raise RasterError(f"`{what}` {list(values)}: every value must be a finite number")
        if self.scales is not None and any(v == 0 for v in self.scales):
            raise RasterError(f"`scale` {list(self.scales)}: a scale of 0 erases the band; use 1 to keep raw values")


def _per_band(values: tuple[float, ...] | None, count: int, what: str) -> tuple[float, ...] | None:
    if values is None:
        return None
    if len(values) == 1:
        return values * count
    if len(values) != count:
        raise RasterError(f"`{what}` gives {len(values)} values {list(values)} for {count} selected band(s); give "
                          f"one value per band or one for all")
    return tuple(values)


@dataclasses.dataclass(frozen=True)
class BandSpec:
    """Band selection: 1-based `indexes` into the raster and one name per selected band.

    `source_count` is the band count of the raster the selection was made on (0 when unknown). Per band, physical
    value = raw x `scales` + `offsets` (default 1 and 0), in `units` ("dn" when unknown, or "reflectance").
    `fill_values` (None per band without one) are undeclared nodata values found in the training images (see
    `FillValueCheck`): they read as NaN, like declared nodata.
    """

    indexes: tuple[int, ...]
    names: tuple[str, ...]
    source_count: int = 0
    scales: tuple[float, ...] = ()
    offsets: tuple[float, ...] = ()
    units: str = "dn"
    fill_values: tuple[float | None, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "fill_values", tuple(None if v is None else float(v) for v in self.fill_values)
                           or (None,) * len(self.indexes))
        object.__setattr__(self, "scales", tuple(float(v) for v in self.scales) or (1.0,) * len(self.indexes))
        object.__setattr__(self, "offsets", tuple(float(v) for v in self.offsets) or (0.0,) * len(self.indexes))
        if len(self.fill_values) != len(self.indexes):
            raise RasterError(f"band spec {list(self.names)}: {len(self.fill_values)} fill value(s) for "
                              f"{len(self.indexes)} band(s)")
        if len(self.scales) != len(self.indexes) or len(self.offsets) != len(self.indexes):
            raise RasterError(f"band spec {list(self.names)}: {len(self.scales)} scale(s) and {len(self.offsets)} "
                              f"offset(s) for {len(self.indexes)} band(s); give one per band")
        if self.units not in UNITS:
            raise RasterError(f"band units {self.units!r}: choose from {list(UNITS)}")

    @property
    def count(self) -> int:
        """Number of bands the model reads."""
        return len(self.indexes)

    @property
    def scaled(self) -> bool:
        """True when some band has a scale other than 1 or an offset other than 0."""
        return any(s != 1 for s in self.scales) or any(o != 0 for o in self.offsets)

    def physical(self, data: np.ndarray) -> np.ndarray:
        """Raw (C, H, W) values, or a batch of them, in physical units: float32 raw x scale + offset per band, and
        NaN where a band holds its fill value (`data` itself when there is nothing to do). NaN stays NaN; declared
        nodata masks are the caller's."""
        fills = [(k, v) for k, v in enumerate(self.fill_values) if v is not None]
        if not self.scaled and not fills:
            return data
        out = data.astype(np.float32)
        if self.scaled:
            scales = np.asarray(self.scales, dtype=np.float64)[:, None, None]
            offsets = np.asarray(self.offsets, dtype=np.float64)[:, None, None]
            out = (data.astype(np.float64) * scales + offsets).astype(np.float32)
        for k, value in fills:
            np.copyto(out[..., k, :, :], np.float32(np.nan), where=data[..., k, :, :] == value)
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for model files and provenance tags."""
        return {"indexes": list(self.indexes), "names": list(self.names), "source_count": self.source_count,
                "scales": list(self.scales), "offsets": list(self.offsets), "units": self.units,
                "fill_values": list(self.fill_values)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BandSpec:
        """Inverse of `to_dict`; dicts without scales, offsets, units or fill values (older model files) get 1, 0,
        "dn" and none."""
        return cls(tuple(int(i) for i in data["indexes"]), tuple(str(n) for n in data["names"]),
                   int(data.get("source_count", 0)), tuple(float(v) for v in data.get("scales") or ()),
                   tuple(float(v) for v in data.get("offsets") or ()), str(data.get("units") or "dn"),
                   tuple(data.get("fill_values") or ()))


def reflectance_normalization(count: int) -> Normalization:
    """The fixed normalization of models trained in reflectance (see `REFLECTANCE_NORMALIZATION_MEAN`)."""
    return Normalization((REFLECTANCE_NORMALIZATION_MEAN,) * count, (REFLECTANCE_NORMALIZATION_STD,) * count)


def parse_band_values(text: str | None, what: str) -> tuple[float, ...] | None:
    """Parse "2e-5" or "1e-4,1e-4,1e-4" (scale or offset values) into floats; None stays None."""
    if text is None or text == "":
        return None
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError as exc:
        raise RasterError(f"`{what}` {text!r} is not a comma-separated list of numbers, e.g. 2e-5 or "
                          "1e-4,1e-4,1e-4,1e-4") from exc


def parse_band_indexes(text: str | None) -> list[int] | None:
    """Parse "1,2,3" into [1, 2, 3]; None stays None (all bands)."""
    if text is None or text == "":
        return None
    try:
        indexes = [int(part) for part in text.split(",")]
    except ValueError as exc:
        raise RasterError(f"`bands` {text!r} is not a comma-separated list of 1-based band numbers, "
                          "e.g. 1,2,3") from exc
    if any(i < 1 for i in indexes):
        raise RasterError(f"`bands` {text!r}: band numbers start at 1")
    return indexes


def band_spec_for(src: DatasetReader, indexes: Sequence[int] | None = None,
                  given: BandUnits | None = None) -> BandSpec:
    """The band spec of `src`: the selected (default all) bands, named by their descriptions or b1, b2..., with
    scales, offsets and units from `given` where given, else from the file's metadata (GDAL scale/offset; units
    "reflectance" when every selected band's unit type says so, else "dn")."""
    chosen = tuple(indexes) if indexes else tuple(range(1, src.count + 1))
    for i in chosen:
        if i > src.count:
            raise RasterError(f"band {i} requested but {src.name} has {src.count} band(s); choose from 1..{src.count}")
    names = tuple((src.descriptions[i - 1] or f"b{i}") for i in chosen)
    given = given or BandUnits()
    scales = _per_band(given.scales, len(chosen), "scale") or tuple(src.scales[i - 1] for i in chosen)
    offsets = _per_band(given.offsets, len(chosen), "offset") or tuple(src.offsets[i - 1] for i in chosen)
    file_units = {(src.units[i - 1] or "").strip().lower() for i in chosen}
    units = given.units or ("reflectance" if file_units == {"reflectance"} else "dn")
    return BandSpec(chosen, names, src.count, scales, offsets, units)


def read_bands(src: DatasetReader, window: Window, spec: BandSpec) -> tuple[np.ndarray, np.ndarray]:
    """`read_masked` of `spec`'s bands, converted to physical units (`BandSpec.physical`; a band's fill value is
    invalid): the one read every path that feeds a model uses."""
    data, valid = read_masked(src, window, list(spec.indexes))
    physical = spec.physical(data)
    if physical is not data:
        valid &= np.isfinite(physical)
    return physical, valid


def check_bands_match(expected: BandSpec, src: DatasetReader, indexes: Sequence[int] | None = None,
                      given: BandUnits | None = None) -> BandSpec:
    """Return the band spec to read from `src` for a model trained on `expected`; raise if they cannot match.

    Without explicit `indexes`, the image must have as many bands as the model's training image had. Scales and
    offsets come from `given` or the file (see `band_spec_for`); their units must suit the model (see
    `check_units`, judged on a decimated read of the image).
    """
    if not indexes and expected.source_count and src.count != expected.source_count:
        raise RasterError(
            f"the model was trained on bands {list(expected.names)} of a {expected.source_count}-band image but "
            f"{src.name} has {src.count} band(s); pass `bands` with {expected.count} band numbers of this image in "
            "the model's order"
        )
    spec = band_spec_for(src, indexes or (expected.indexes if max(expected.indexes) <= src.count else None), given)
    if spec.count != expected.count:
        raise RasterError(
            f"the model reads {expected.count} band(s) {list(expected.names)} but {src.name} gives {spec.count} "
            f"{list(spec.names)}; pass `bands` with {expected.count} band numbers of this image in the model's order"
        )
    named = [(a, b) for a, b in zip(expected.names, spec.names, strict=True)
             if not _DEFAULT_NAME.match(a) and not _DEFAULT_NAME.match(b)]
    wrong = [(a, b) for a, b in named if a.lower() != b.lower()]
    if wrong and not indexes:  # bands picked by number are in the model's order by the caller's word
        raise RasterError(
            f"band names of {src.name} {list(spec.names)} do not match the model's {list(expected.names)}; "
            "pass `bands` to pick the image bands in the model's order"
        )
    check_units(expected, spec, str(src.name), sample_physical(src, spec) if expected.units == "reflectance" else None)
    return dataclasses.replace(spec, fill_values=expected.fill_values)


def sample_physical(src: DatasetReader, spec: BandSpec, side: int = 256) -> np.ndarray:
    """A decimated (C, <=side, <=side) read of `spec`'s bands in physical units, nodata as NaN."""
    shape = (spec.count, min(side, src.height), min(side, src.width))
    data = src.read(list(spec.indexes), out_shape=shape, masked=True)
    raw = np.ma.filled(data.astype(np.float64), np.nan)
    return np.asarray(spec.physical(raw), dtype=np.float64)


def check_units(model: BandSpec, image: BandSpec | None, source: str, values: np.ndarray | None = None) -> None:
    """Refuse an image whose band units cannot be the model's, naming the band and the fix (RasterError).

    A model in reflectance refuses physical `values` ((C, ...) or (N, C, ...), after scale and offset) above
    `REFLECTANCE_MAX`; a model in digital numbers refuses an `image` spec in reflectance or with other scales or
    offsets than its own (its statistics are in its training image's units).
    """
    if model.units == "reflectance":
        if values is None:
            return
        per_band = np.moveaxis(np.asarray(values, dtype=np.float64), -3, 0).reshape(model.count, -1)
        for k, name in enumerate(model.names):
            finite = per_band[k][np.isfinite(per_band[k])]
            top = float(finite.max()) if finite.size else 0.0
            if top > REFLECTANCE_MAX:
                how = (f"scale {image.scales[k]:g} and offset {image.offsets[k]:g}" if image is not None and
                       image.scaled else "no scale or offset")
                raise RasterError(
                    f"band {k + 1} ({name}) of {source} has values up to {top:g} with {how}: not reflectance, "
                    f"which the model reads; give the image's `scale` and `offset` (physical = raw x scale + "
                    f"offset), e.g. {SCALE_EXAMPLES}")
        return
    if image is None:
        return
    for k, name in enumerate(model.names):
        if image.units == "reflectance" or (image.scales[k], image.offsets[k]) != (model.scales[k], model.offsets[k]):
            raise RasterError(
                f"band {k + 1} ({name}) of {source} is in {image.units} with scale {image.scales[k]:g} and offset "
                f"{image.offsets[k]:g}, but the model reads digital numbers with scale {model.scales[k]:g} and "
                f"offset {model.offsets[k]:g}: give `scale` {model.scales[k]:g} and `offset` {model.offsets[k]:g} "
                "for this image, or use a model trained with `units` reflectance")


@dataclasses.dataclass(frozen=True)
class Normalization:
    """Per-band affine normalization: (value - mean) / std, in the band order of a BandSpec."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def apply(self, image: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Normalize a (C, H, W) array, or a batch of them, to float32 with the band statistics. Non-finite values,
        and every band of pixels outside the (H, W) `valid` mask, become 0 (the band mean), so nodata never reaches a
        model."""
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        out = (image.astype(np.float32) - mean) / std
        keep = np.isfinite(out) if valid is None else valid & np.isfinite(out)
        return np.where(keep, out, np.float32(0)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for model files and provenance tags."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        """Inverse of `to_dict`."""
        return cls(tuple(float(v) for v in data["mean"]), tuple(float(v) for v in data["std"]))


def compute_normalization(sources: Iterable[tuple[DatasetReader, Sequence[Window]]],
                          spec: BandSpec) -> tuple[Normalization, BandSpec]:
    """Streaming per-band mean and std over each band's valid values in the given windows (float64 sums; nodata, NaN
    and +/-Inf left out), and `spec` with the undeclared fill values found there (see `FillValueCheck`): those are
    left out of the statistics and read as nodata from then on, which a log line says.

    Raises:
        RasterError: a band has no valid value, or its statistics are not finite.
    """
    total = np.zeros(spec.count)
    total_sq = np.zeros(spec.count)
    n = np.zeros(spec.count, dtype=np.int64)
    names = []
    fills = FillValueCheck(spec.names)
    for src, windows in sources:
        names.append(str(src.name))
        for window in windows:
            data, valid = read_bands(src, window, spec)
            pixels = np.where(valid, data.astype(np.float64), np.nan)[:, valid.any(axis=0)]
            pixels[~np.isfinite(pixels)] = np.nan
            pixels[fills.update(pixels)] = np.nan  # candidates: added back below unless they are fill values
            total += np.nansum(pixels, axis=1)
            total_sq += np.nansum(pixels**2, axis=1)
            n += (~np.isnan(pixels)).sum(axis=1)
    source = ", ".join(names)
    found = {(band, k) for band, k, _ in fills.found()}
    for band, k in np.argwhere(fills.counts > 0).tolist():
        if (band, k) not in found:
            value, count = FILL_VALUES[k], fills.counts[band, k]
            total[band] += count * value
            total_sq[band] += count * value**2
            n[band] += count
    for band, k, share in fills.found():
        log.warning("%s; it is treated as nodata in this band (recorded in the model's band spec); declare the "
                    "image's nodata value to say so yourself", fills.describe(band, k, share, source))
    empty = [name for name, count in zip(spec.names, n, strict=True) if count == 0]
    if empty:
        raise RasterError(f"band(s) {empty} of {source} have no valid pixel to compute statistics from (all "
                          "nodata, NaN or Inf); check the image's nodata value or leave the band(s) out with `bands`")
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
    std = np.where(std > 1e-6, std, 1.0)
    normalization = checked_normalization(Normalization(tuple(mean.tolist()), tuple(std.tolist())),
                                          [f"{name} of {source}" for name in spec.names])
    return normalization, dataclasses.replace(spec, fill_values=fills.fill_values())


def checked_normalization(normalization: Normalization, names: Sequence[str]) -> Normalization:
    """`normalization` itself when every mean and std is finite (std > 0); else RasterError naming the band."""
    bad = [name for name, m, s in zip(names, normalization.mean, normalization.std, strict=True)
           if not (np.isfinite(m) and np.isfinite(s) and s > 0)]
    if bad:
        raise RasterError(f"the statistics of band(s) {bad} are not finite (mean {list(normalization.mean)}, std "
                          f"{list(normalization.std)}): values too large or undeclared fill values; declare the "
                          "image's nodata value or leave the band(s) out with `bands`")
    return normalization
