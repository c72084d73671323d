"""Config files -> validated frozen dataclasses. Nothing else parses config."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, Literal

import yaml

from landsight.errors import ConfigError
from landsight.imagery.io import open_raster
from landsight.labels.classes import ClassTable
from landsight.labels.vectors import read_features, table_from_field

MODEL_CHOICES = ("auto", "network", "baseline")
"""What `train` keeps: the better of the network and the pixel baseline on validation, the network, or the baseline."""

SAMPLING_CHOICES = ("auto", "uniform", "labels")
"""Where training chips come from: anywhere in the training area, or around labelled pixels with each class drawn
alike; auto picks labels when they cover less than half of the area."""

VALIDATION_CHOICES = ("auto", "blocks", "polygons")
"""How validation is held out: random chip-sized blocks, or whole label polygons (a share of each class's); auto
picks polygons for sparse vector labels."""

LossName = Literal["ce", "dice", "lovasz", "ce+dice", "ce+lovasz"]


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """What to learn from: image/label pairs and the class table (see configs/dataset-*.yaml)."""

    pairs: tuple[tuple[str, str], ...] = ()
    classes: ClassTable | None = None
    class_field: str | None = None
    background: bool = True


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to learn it (see configs/model-*.yaml). Every field is also a `landsight train` flag."""

    arch: str = "unet"
    encoder: str = "tf_efficientnet_lite0"
    weights: str | None = "imagenet"
    chip_size: int = 256
    epochs: int = 40
    batch_size: int = 8
    chips_per_epoch: int = 64
    lr: float = 1e-3
    encoder_lr_factor: float = 1.0
    weight_decay: float = 1e-4
    loss: LossName = "ce+dice"
    class_weights: tuple[float, ...] | Literal["auto"] | None = None
    val_fraction: float = 0.2
    patience: int = 8
    augment: bool = True
    seed: int = 0
    workers: int = 0
    ensemble: int = 1
    devices: int = 1
    precision: str = "auto"
    model: str = "auto"
    sampling: str = "auto"
    validation: str = "auto"

    def __post_init__(self) -> None:
        if self.chip_size % 32 or self.chip_size < 32:
            raise ConfigError(f"chip_size {self.chip_size} must be a positive multiple of 32 (U-Net downsamples 5x)")
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction {self.val_fraction} must be in [0, 1)")
        if self.model not in MODEL_CHOICES:
            raise ConfigError(f"model {self.model!r}: choose from {list(MODEL_CHOICES)}")
        if self.sampling not in SAMPLING_CHOICES:
            raise ConfigError(f"sampling {self.sampling!r}: choose from {list(SAMPLING_CHOICES)}")
        if self.validation not in VALIDATION_CHOICES:
            raise ConfigError(f"validation {self.validation!r}: choose from {list(VALIDATION_CHOICES)}")
        if self.precision not in ("auto", "32", "bf16"):
            raise ConfigError(f"precision {self.precision!r}: choose from auto, 32 or bf16")
        for name in ("epochs", "batch_size", "chips_per_epoch", "patience", "ensemble", "devices"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1 (got {getattr(self, name)})")
        if self.loss not in typing.get_args(LossName):
            raise ConfigError(f"unknown loss {self.loss!r}; choose from {list(typing.get_args(LossName))}")


def _load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config {path} must be a mapping of keys to values")
    return data


def load_dataset_config(path: str | Path) -> DatasetConfig:
    """Read a dataset config: `pairs` (list of {image, labels}, relative to the file), `classes`, `class_field`,
    `background`."""
    data = _load_yaml(path)
    unknown = set(data) - {f.name for f in dataclasses.fields(DatasetConfig)}
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)} in {path}; valid: pairs, classes, class_field, background")
    base = Path(path).parent
    try:
        pairs = tuple((str(base / p["image"]), str(base / p["labels"])) for p in data.get("pairs", []))
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"each entry of 'pairs' in {path} needs 'image' and 'labels'") from exc
    classes = ClassTable.from_list(data["classes"]) if data.get("classes") else None
    return DatasetConfig(pairs, classes, data.get("class_field"), bool(data.get("background", True)))


def load_train_config(path: str | Path | None, **overrides: Any) -> TrainConfig:
    """Read a model/training config and apply `overrides` (CLI flags; None means "not given")."""
    data = _load_yaml(path) if path else {}
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown keys {sorted(unknown)} in {path}; valid: {sorted(names)}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    if data.get("class_weights") not in (None, "auto"):
        try:
            data["class_weights"] = tuple(float(w) for w in data["class_weights"])
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"class_weights {data['class_weights']!r} in {path}: give auto or one number per "
                              "class, e.g. [1.0, 3.0]") from exc
    if data.get("weights") in ("none", "None", ""):
        data["weights"] = None
    try:
        return TrainConfig(**data)
    except TypeError as exc:
        raise ConfigError(f"invalid training config: {exc}") from exc


def class_table_for(image: str, labels: str, config_path: str | None, class_field: str | None, class_name: str,
                    background: bool) -> tuple[ClassTable, str | None]:
    """The class table and class field to use: from the dataset config if given, else from the labels."""
    config = load_dataset_config(config_path) if config_path else DatasetConfig()
    field = class_field or config.class_field
    if config.classes is not None:
        return config.classes, field
    with open_raster(image) as src:
        crs = src.crs
    return table_from_field(read_features(labels, crs), field, background, class_name), field
