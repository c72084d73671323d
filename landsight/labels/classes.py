"""The class table: value in the mask, name, colour. One source of truth for masks, models and plots."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from landsight.errors import ConfigError, LabelError

IGNORE_VALUE = 255
"""Mask value for pixels that carry no label (ignored by losses and metrics); also the output nodata value."""

_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
            "#7f7f7f"]
BACKGROUND_COLOR = "#000000"


@dataclasses.dataclass(frozen=True)
class ClassInfo:
    """One class: `value` written in masks (0-254), human `name`, `color` as #rrggbb."""

    value: int
    name: str
    color: str


@dataclasses.dataclass(frozen=True)
class ClassTable:
    """Ordered classes; a model's output channel i is `classes[i]`."""

    classes: tuple[ClassInfo, ...]

    def __post_init__(self) -> None:
        values = [c.value for c in self.classes]
        names = [c.name for c in self.classes]
        if not self.classes:
            raise ConfigError("the class table is empty; give at least one class")
        if len(set(values)) != len(values) or len(set(names)) != len(names):
            raise ConfigError(f"class values {values} and names {names} must be unique")
        bad = [v for v in values if not 0 <= v < IGNORE_VALUE]
        if bad:
            raise ConfigError(f"class values {bad} out of range; use 0..{IGNORE_VALUE - 1} ({IGNORE_VALUE} = ignore)")

    @property
    def names(self) -> list[str]:
        """Class names in channel order."""
        return [c.name for c in self.classes]

    @property
    def values(self) -> list[int]:
        """Mask values in channel order."""
        return [c.value for c in self.classes]

    def __len__(self) -> int:
        return len(self.classes)

    def value_of(self, name: str) -> int:
        """Mask value of class `name`; unknown names raise with the valid ones."""
        for c in self.classes:
            if c.name == name:
                return c.value
        raise LabelError(f"unknown class {name!r}; this class table has {self.names}")

    def index_lut(self) -> np.ndarray:
        """256-entry lookup: mask value -> channel index, IGNORE_VALUE for values not in the table."""
        lut = np.full(256, IGNORE_VALUE, dtype=np.uint8)
        for i, c in enumerate(self.classes):
            lut[c.value] = i
        return lut

    def value_lut(self) -> np.ndarray:
        """Channel index -> mask value, as uint8."""
        return np.asarray(self.values, dtype=np.uint8)

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """GDAL colour table {value: (r, g, b, a)}; the ignore value is transparent."""
        cmap = {c.value: (*_hex_to_rgb(c.color), 255) for c in self.classes}
        cmap[IGNORE_VALUE] = (0, 0, 0, 0)
        return cmap

    def to_list(self) -> list[dict[str, Any]]:
        """Plain list of dicts for model files, configs and tags."""
        return [dataclasses.asdict(c) for c in self.classes]

    @classmethod
    def from_list(cls, items: Sequence[dict[str, Any]]) -> ClassTable:
        """Build from [{"value", "name", "color"?}, ...]; colours default to a palette."""
        try:
            classes = tuple(
                ClassInfo(int(item["value"]), str(item["name"]), str(item.get("color") or _PALETTE[i % len(_PALETTE)]))
                for i, item in enumerate(items)
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"each class needs an integer 'value' and a 'name' (got {list(items)!r})") from exc
        return cls(classes)

    @classmethod
    def from_names(cls, names: Iterable[str], background: bool) -> ClassTable:
        """Classes numbered 1..N in the given order, preceded by background (0) if `background`."""
        items: list[dict[str, Any]] = []
        if background:
            items.append({"value": 0, "name": "background", "color": BACKGROUND_COLOR})
        items += [{"value": i + 1, "name": n, "color": _PALETTE[i % len(_PALETTE)]} for i, n in enumerate(names)]
        return cls.from_list(items)


def _hex_to_rgb(color: str) -> tuple[int, int, int]:
    text = color.lstrip("#")
    if len(text) != 6:
        raise ConfigError(f"colour {color!r} is not #rrggbb")
    return int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16)
