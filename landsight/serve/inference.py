"""One request's inference: a decoded image -> windows on `predict`'s grid -> the batcher -> an encoded answer.

Runs in a worker thread (never on the event loop); each window row is handed to the model's `DynamicBatcher` on the
loop, where it may share forward passes with other requests. Blending and writing are `landsight predict`'s own
(`read_batch`, `aligned_window_rows`, `write_prediction`), so a mask answered here equals `predict`'s output.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from rasterio.io import DatasetReader
from rasterio.windows import Window

from landsight.imagery.bands import BandSpec
from landsight.imagery.io import read_window
from landsight.imagery.windows import aligned_window_rows
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.labels.vector_out import feature_collection
from landsight.predict.raster import (
    RasterPlan,
    WindowResult,
    batch_shape,
    plan_chunks,
    provenance_tags,
    read_batch,
    write_prediction,
)
from landsight.serve.batching import DynamicBatcher
from landsight.serve.config import Limits
from landsight.serve.decode import check_bands, open_body
from landsight.serve.errors import NotAcceptable, RequestTimeout
from landsight.serve.models import ServedModel
from landsight.vectorize import mask_features

FORMATS = {"tiff": "image/tiff", "png": "image/png", "probabilities": "image/tiff",
           "geojson": "application/geo+json", "json": "application/json"}
"""Answer formats (`?format=`) and their media types."""

SOURCE_NAME = "request body"
"""What the `source_image` provenance tag of an answer says (the client's file name is not known, nor wanted)."""


@dataclasses.dataclass(frozen=True)
class Answer:
    """An encoded response body and its media type."""

    body: bytes
    media_type: str


@dataclasses.dataclass(frozen=True)
class Job:
    """What a worker thread needs to answer one predict request."""

    model: ServedModel
    batcher: DynamicBatcher
    loop: asyncio.AbstractEventLoop
    window: int
    overlap: int
    limits: Limits
    deadline: float

    def infer(self, items: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Outputs for `items` through the batcher on the event loop; blocks this thread until they are ready."""
        async def gather() -> list[np.ndarray]:
            return list(await asyncio.gather(*(self.batcher.submit(x) for x in items)))

        future = asyncio.run_coroutine_threadsafe(gather(), self.loop)
        try:
            return future.result(timeout=max(0.0, self.deadline - time.monotonic()))
        except TimeoutError as exc:
            future.cancel()
            raise RequestTimeout(f"the request took longer than {self.limits.timeout_s:g} s; send a smaller image "
                                 "or retry when the server is less busy") from exc


def choose_format(query: str | None, accept: str | None, task: str, georeferenced: bool) -> str:
    """The answer format: `?format=` if given, else from the Accept header, else like the input."""
    if task == "classification":
        if query not in (None, "json"):
            raise NotAcceptable(f"format={query!r}: a classifier answers class probabilities as JSON (format=json)")
        return "json"
    if query is not None:
        if query not in FORMATS or query == "json":
            raise NotAcceptable(f"format={query!r} is not offered; use one of tiff, png, probabilities, geojson")
        return query
    accepted = [part.split(";")[0].strip().lower() for part in (accept or "").split(",")]
    for media in accepted:
        if media in ("application/geo+json", "application/json"):
            return "geojson"
        if media == "image/png":
            return "png"
        if media in ("image/tiff", "image/geotiff"):
            return "tiff"
    return "tiff" if georeferenced else "png"


def predict_body(job: Job, body: bytes, content_type: str | None, query_format: str | None,
                 accept: str | None) -> Answer:
    """Decode, check and predict one request body; encode the answer (runs in a worker thread)."""
    with open_body(body, content_type, job.limits) as src:
        spec = check_bands(job.model.model_file.bands, src)
        fmt = choose_format(query_format, accept, job.model.task, src.crs is not None)
        if fmt == "json":
            return _classify(job, src, spec)
        if fmt == "geojson" and src.crs is None:
            raise NotAcceptable("polygons need georeferencing: send a GeoTIFF, or ask for format=png or tiff")
        with tempfile.TemporaryDirectory(prefix="landsight-serve-") as tmp:
            out = Path(tmp) / "prediction.tif"
            segment(job, src, spec, out, probabilities=fmt == "probabilities", cog=fmt in ("tiff", "probabilities"))
            return encode(out, fmt, job.model.model_file.classes)


def segment(job: Job, src: DatasetReader, spec: BandSpec, out: Path, probabilities: bool, cog: bool) -> None:
    """Predict `src` into `out` exactly as `landsight predict` would, windows inferred through the batcher."""
    rows = aligned_window_rows(src.width, src.height, job.window, job.overlap)
    plan = RasterPlan(SOURCE_NAME, src.width, src.height, spec, job.window, job.overlap, plan_chunks(rows, 1))
    tags = provenance_tags(job.model.model_file, spec, job.window, job.overlap, SOURCE_NAME)
    results = window_results(src, plan, job.model, job.infer)
    write_prediction(src, plan, out, job.model.model_file.classes, tags, results, probabilities, cog=cog)


def window_results(src: DatasetReader, plan: RasterPlan, model: ServedModel,
                   infer: Callable[[Sequence[np.ndarray]], list[np.ndarray]]) -> Iterator[WindowResult]:
    """Per-window probabilities, row by row (one row of windows in memory), padding cut off as `infer_chunk` does."""
    shape = batch_shape(plan.width, plan.height, plan.window)
    for r, row in enumerate(plan.rows):
        batch = read_batch(src, row, plan.spec, model.model_file.normalization, shape)
        for w, p in zip(row, infer(list(batch)), strict=True):
            yield WindowResult(r, w, np.ascontiguousarray(p[:, :int(w.height), :int(w.width)]))


def _classify(job: Job, src: DatasetReader, spec: BandSpec) -> Answer:
    raw = spec.physical(read_window(src, Window(0, 0, src.width, src.height), list(spec.indexes)).astype(np.float32))
    probs = job.infer([raw])[0]
    names = job.model.model_file.classes.names
    body = {"model": job.model.name, "sha256": job.model.sha256,
            "probabilities": {n: round(float(p), 6) for n, p in zip(names, probs, strict=True)}}
    return Answer(json.dumps(body).encode(), FORMATS["json"])


def encode(mask: Path, fmt: str, classes: ClassTable) -> Answer:
    """The written prediction as the requested format."""
    if fmt in ("tiff", "probabilities"):
        return Answer(mask.read_bytes(), FORMATS[fmt])
    if fmt == "geojson":
        return Answer(json.dumps(feature_collection(mask_features(mask))).encode(), FORMATS[fmt])
    with rasterio.open(mask) as src:  # our own file; may lack a CRS (PNG and JPEG bodies)
        values = src.read(1)
    return Answer(mask_png(values, classes), FORMATS["png"])


def mask_png(values: np.ndarray, classes: ClassTable, alpha: int = 255,
             transparent: Sequence[int] = (IGNORE_VALUE,)) -> bytes:
    """A palette PNG whose pixel values are the class values and whose palette holds the class colours;
    `transparent` values (nodata by default) are fully transparent, the others have `alpha`."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    opacity = np.full(256, alpha, dtype=np.uint8)
    for value, (r, g, b, a) in classes.colormap().items():
        palette[value] = (r, g, b)
        opacity[value] = min(a, alpha)
    opacity[list(transparent)] = 0
    image = Image.fromarray(values.astype(np.uint8), mode="P")
    image.putpalette(palette.ravel().tolist())
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", transparency=bytes(opacity.tolist()), optimize=False)
    return buffer.getvalue()

