"""Train a segmentation model from image/label pairs into one self-describing MODEL file."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path

from landsight.config import TrainConfig
from landsight.labels.classes import ClassTable
from landsight.models.model_file import ModelFile
from landsight.models.registry import create_model
from landsight.outputs import check_output
from landsight.torch_utils import resolve_device
from landsight.train.fit import fit
from landsight.train.prepare import prepare_training_data

log = logging.getLogger(__name__)


def train_segmentation(pairs: Sequence[tuple[str, str]], output: str | Path, table: ClassTable, field: str | None,
                       background: bool, config: TrainConfig, device: str = "auto",
                       band_indexes: Sequence[int] | None = None,
                       bounds: tuple[float, float, float, float] | None = None, overwrite: bool = False,
                       restart: bool = False, max_minutes: float | None = None) -> ModelFile:
    """Rasterize, split, train and save. Interrupted runs resume from `OUTPUT.resume.pt` when run again."""
    output = check_output(output, overwrite)
    work_dir = output.with_name(output.name + ".work")
    resume_path = output.with_name(output.name + ".resume.pt")
    data = prepare_training_data(pairs, work_dir, table, field, background, config, band_indexes, bounds)
    n_train, n_val = data.sizes()
    log.info("blocked split: %d training chip positions, %d validation chips of %d px", n_train, n_val,
             config.chip_size)
    model = create_model(config.arch, config.encoder, data.bands.count, len(table),
                         None if resume_path.exists() and not restart else config.weights)
    result = fit(model, data, config, resolve_device(device), resume_path, output.with_suffix(""), restart,
                 max_minutes)
    model_file = ModelFile(
        arch=config.arch, encoder=config.encoder, bands=data.bands, normalization=data.normalization,
        classes=table, chip_size=config.chip_size, state_dict=result.state_dict,
        training={"config": dataclasses.asdict(config), "data_sha256": data.fingerprint(), "sources": data.sources,
                  "train_positions": n_train, "val_chips": n_val, "best_epoch": result.best_epoch,
                  "epochs_run": len(result.history), "bounds": list(bounds) if bounds else None,
                  "background": background, "class_field": field},
        metrics=result.metrics,
    )
    model_file.save(output, overwrite)
    resume_path.unlink(missing_ok=True)
    shutil.rmtree(work_dir, ignore_errors=True)
    return model_file
