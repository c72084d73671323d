"""A Beam ModelHandler for landsight segmentation models: loaded once per worker, one forward pass per chunk."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from apache_beam.ml.inference.base import ModelHandler

from landsight.pipeline.stages import ChunkData, ChunkResult, infer
from landsight.predict.predictor import Predictor


class LandsightModelHandler(ModelHandler[ChunkData, ChunkResult, Predictor]):
    """Runs a landsight MODEL file on read chunks (`stages.ChunkData`).

    Beam groups chunks into batches of up to `max_batch_chunks`; each chunk still runs as its own forward pass, so
    outputs do not depend on Beam's grouping (see `landsight.predict.raster`).

    Args:
        model_path: segmentation MODEL file (`landsight train` output).
        device: "cpu", "cuda" or "auto".
        out_dir: the job's output folder, where window probabilities are spilled until stitching.
        max_batch_chunks: most chunks per Beam batch (each chunk already holds up to `batch_size` windows).
    """

    def __init__(self, model_path: str, device: str, out_dir: str, max_batch_chunks: int = 4) -> None:
        super().__init__()
        self._model_path = model_path
        self._device = device
        self._out_dir = out_dir
        self._max_batch_chunks = max_batch_chunks

    def load_model(self) -> Predictor:
        """Build the network once per worker process (Beam shares it between the worker's threads)."""
        return Predictor.load(self._model_path, self._device)

    def run_inference(self, batch: Sequence[ChunkData], model: Predictor,
                      inference_args: dict[str, Any] | None = None) -> Iterable[ChunkResult]:
        """Segment each chunk of the batch."""
        return [infer(data, model, self._out_dir) for data in batch]

    def get_num_bytes(self, batch: Sequence[ChunkData]) -> int:
        """Bytes of the batch's pixel arrays (Beam metrics)."""
        return sum(int(data.batch.nbytes) for data in batch)

    def get_metrics_namespace(self) -> str:
        """Namespace of Beam's inference metrics."""
        return "landsight"

    def batch_elements_kwargs(self) -> dict[str, int]:
        """Bounds for Beam's BatchElements, in chunks."""
        return {"min_batch_size": 1, "max_batch_size": self._max_batch_chunks}
