"""Quicklook PNGs: a decimated read of an image (percentile stretch) with optional mask/polygon overlays."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import shapely
from rasterio.enums import Resampling

from landsight.imagery.io import open_raster
from landsight.labels.classes import IGNORE_VALUE
from landsight.outputs import atomic_path


def _decimated(path: str | Path, indexes: Sequence[int], max_size: int, resampling: Resampling) -> np.ndarray:
    """Read `indexes` at most `max_size` px on the long side (overviews used when present)."""
    with open_raster(path) as src:
        scale = max(1.0, max(src.width, src.height) / max_size)
        shape = (len(indexes), int(src.height / scale), int(src.width / scale))
        return src.read(list(indexes), out_shape=shape, resampling=resampling)


def stretched_image(path: str | Path, max_size: int = 1024, rgb: Sequence[int] | None = None) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1]: bands `rgb` (default first three, or the single band as grey), 2-98 %."""
    with open_raster(path) as src:
        indexes = list(rgb) if rgb else ([1, 2, 3] if src.count >= 3 else [1])
    data = _decimated(path, indexes, max_size, Resampling.average).astype(np.float64)
    out = np.empty_like(data)
    for i, band in enumerate(data):
        lo, hi = np.percentile(band, [2, 98])
        out[i] = np.clip((band - lo) / max(hi - lo, 1e-9), 0, 1)
    if len(out) == 1:
        out = np.repeat(out, 3, axis=0)
    return out.transpose(1, 2, 0)


def mask_overlay(path: str | Path, colors: dict[int, str], shape: tuple[int, int]) -> np.ndarray:
    """(H, W, 4) RGBA of a class raster resampled (nearest) to `shape`; background (0) and ignore transparent."""
    with open_raster(path) as src:
        data = src.read(1, out_shape=shape, resampling=Resampling.nearest)
    rgba = np.zeros((*shape, 4))
    for value, color in colors.items():
        if value in (0, IGNORE_VALUE):
            continue
        rgba[data == value] = (*matplotlib.colors.to_rgb(color), 0.55)
    return rgba


def save_quicklook(image: str | Path, out: str | Path, title: str, overlay: np.ndarray | None = None,
                   outlines: Sequence[shapely.Geometry] = (), bounds: tuple[float, float, float, float] | None = None,
                   box: tuple[float, float, float, float] | None = None) -> None:
    """Write a PNG of `image` with an optional RGBA `overlay`, polygon `outlines` and a dashed `box`.

    `bounds` (left, bottom, right, top) place outlines and box, in the image CRS.
    """
    rgb = stretched_image(image)
    fig, ax = plt.subplots(figsize=(6, 6 * rgb.shape[0] / rgb.shape[1] + 0.4))
    extent = (bounds[0], bounds[2], bounds[1], bounds[3]) if bounds else None
    ax.imshow(rgb, extent=extent)
    if overlay is not None:
        ax.imshow(overlay, extent=extent)
    for geom in outlines:
        for poly in getattr(geom, "geoms", [geom]):
            x, y = poly.exterior.xy
            ax.plot(x, y, color="#ffd92f", linewidth=1.2)
    if box is not None:
        left, bottom, right, top = box
        ax.plot([left, right, right, left, left], [bottom, bottom, top, top, bottom], "--", color="white", lw=1.5)
    ax.set_title(title)
    ax.set_axis_off()
    fig.tight_layout()
    with atomic_path(out, overwrite=True) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
