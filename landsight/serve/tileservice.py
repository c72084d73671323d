"""Predicted and imagery tiles for configured sources, with LRU caches of tiles and of window probabilities."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import mercantile
import numpy as np
from rasterio.windows import Window

from landsight.errors import RasterError
from landsight.imagery.bands import BandSpec
from landsight.imagery.io import open_raster
from landsight.imagery.windows import aligned_window_rows
from landsight.predict.raster import batch_shape, read_batch
from landsight.serve.batching import DynamicBatcher
from landsight.serve.cache import LRUCache
from landsight.serve.decode import check_bands
from landsight.serve.errors import NotAcceptable, NotFound, Unprocessable
from landsight.serve.inference import mask_png
from landsight.serve.models import ServedModel
from landsight.serve.tiles import (
    TileSource,
    blend_region,
    check_tile,
    class_region,
    empty_png,
    imagery_png,
    tile_region,
    to_tile,
    windows_over,
)

WINDOW_CACHE_BYTES = 256 * 1024 * 1024
"""Memory for cached window probabilities (float32, so cached tiles equal freshly computed ones)."""
TILE_ALPHA = 180
"""Opacity of predicted classes on the map (background and nodata are transparent)."""


class TileService:
    """Answers tile requests: `predicted` (a model over a source) and `imagery` (the source itself)."""

    def __init__(self, sources: dict[str, TileSource], window: int, overlap: int, tile_cache: int,
                 on_cache: Callable[[str], None] = lambda result: None) -> None:
        self.sources, self.window, self.overlap = sources, window, overlap
        self.tiles: LRUCache[bytes] = LRUCache(tile_cache * 64 * 1024, len)
        self.windows: LRUCache[np.ndarray] = LRUCache(WINDOW_CACHE_BYTES, lambda a: int(a.nbytes))
        self.on_cache = on_cache
        self._rows = {name: aligned_window_rows(s.width, s.height, window, overlap) for name, s in sources.items()}
        self._specs: dict[tuple[str, str], BandSpec] = {}

    def source(self, name: str | None) -> TileSource:
        """The configured source `name`, or NotFound listing the configured ones."""
        if name not in self.sources:
            known = ", ".join(sorted(self.sources)) or "none: start the server with an image source NAME=RASTER"
            raise NotFound(f"unknown source {name!r}; configured sources: {known}")
        return self.sources[str(name)]

    async def imagery(self, name: str, z: int, x: int, y: int) -> bytes:
        """The source's imagery tile (PNG)."""
        tile, source = check_tile(z, x, y), self.source(name)
        key = ("imagery", name, z, x, y)
        return await self.tiles.get_or_compute(key, lambda: asyncio.to_thread(imagery_png, source, tile))

    async def predicted(self, model: ServedModel, batcher: DynamicBatcher, name: str | None, z: int, x: int,
                        y: int) -> bytes:
        """The model's class tile over source `name` (palette PNG: pixel values are class values)."""
        if model.task != "segmentation":
            raise NotAcceptable(f"model {model.name!r} is a classifier; tiles need a segmentation model")
        tile, source = check_tile(z, x, y), self.source(name)
        key = ("predicted", model.sha256, source.name, z, x, y)
        cached = self.tiles.get(key)
        self.on_cache("hit" if cached is not None else "miss")
        if cached is not None:
            return cached
        return await self.tiles.get_or_compute(key, lambda: self._predict(model, batcher, source, tile))

    async def _predict(self, model: ServedModel, batcher: DynamicBatcher, source: TileSource,
                       tile: mercantile.Tile) -> bytes:
        region = tile_region(source, tile)
        if region is None:
            return empty_png()
        spec = self._spec(model, source)
        windows = windows_over(self._rows[source.name], region)
        probs = await asyncio.gather(*(self._window(model, batcher, source, spec, w) for w in windows))
        return await asyncio.to_thread(self._render, model, source, spec, region, windows, list(probs), tile)

    def _render(self, model: ServedModel, source: TileSource, spec: BandSpec, region: Window,
                windows: list[Window], probs: list[np.ndarray], tile: mercantile.Tile) -> bytes:
        classes = model.model_file.classes
        values = class_region(source, region, blend_region(region, windows, probs, self.overlap),
                              classes.value_lut(), spec.indexes)
        data = to_tile(values[None], region, source, tile, nodata=255)[0]
        background = [c.value for c in classes.classes if c.name == "background"]
        return mask_png(data, classes, alpha=TILE_ALPHA, transparent=(255, *background))

    async def _window(self, model: ServedModel, batcher: DynamicBatcher, source: TileSource, spec: BandSpec,
                      window: Window) -> np.ndarray:
        """One grid window's probabilities (cropped), from the cache or through the batcher."""
        async def compute() -> np.ndarray:
            shape = batch_shape(source.width, source.height, self.window)
            batch = await asyncio.to_thread(_read_window, source.path, window, spec, model, shape)
            probs = await batcher.submit(batch[0])
            return np.ascontiguousarray(probs[:, :int(window.height), :int(window.width)])

        key = (model.sha256, source.name, int(window.col_off), int(window.row_off))
        return await self.windows.get_or_compute(key, compute)

    def _spec(self, model: ServedModel, source: TileSource) -> BandSpec:
        key = (model.name, source.name)
        if key not in self._specs:
            with open_raster(source.path) as src:
                try:
                    self._specs[key] = check_bands(model.model_file.bands, src)
                except Unprocessable as exc:
                    raise Unprocessable(f"model {model.name!r} cannot read source {source.name!r}: {exc}") from exc
        return self._specs[key]


def _read_window(path: str, window: Window, spec: BandSpec, model: ServedModel, shape: tuple[int, int]) -> np.ndarray:
    try:
        with open_raster(path) as src:
            return read_batch(src, [window], spec, model.model_file.normalization, shape)
    except RasterError as exc:
        raise Unprocessable(f"cannot read the source at {window!r}: {exc}") from exc


