"""Per-epoch training history: metrics.csv and a training-curves PNG next to the model."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from landsight.outputs import atomic_path


def write_csv(rows: Sequence[dict[str, Any]], path: Path) -> None:
    """Write history rows (one dict per epoch) as CSV, replacing the previous file."""
    if not rows:
        return
    with atomic_path(path, overwrite=True) as tmp, open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def plot_curves(rows: Sequence[dict[str, Any]], path: Path, title: str) -> None:
    """Loss (train, validation) and validation mIoU / per-class IoU against epochs."""
    if not rows:
        return
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_iou) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], label="train")
    if rows[0].get("val_loss") is not None:
        ax_loss.plot(epochs, [r["val_loss"] for r in rows], label="validation")
    ax_loss.set(xlabel="epoch", ylabel="loss", title="loss")
    ax_loss.legend()
    for key in [k for k in rows[0] if k.startswith("val_iou") or k == "val_miou"]:
        values = [r[key] if r[key] is not None else float("nan") for r in rows]
        ax_iou.plot(epochs, values, label=key.removeprefix("val_").replace("iou_", "IoU "),
                    linewidth=2.5 if key == "val_miou" else 1)
    ax_iou.set(xlabel="epoch", ylabel="IoU", title="validation IoU", ylim=(0, 1))
    if ax_iou.lines:
        ax_iou.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
