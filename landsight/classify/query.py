"""Query a similarity index with an image file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from landsight.classify.classifier import Classifier
from landsight.classify.inputs import iter_inputs
from landsight.classify.similar import SimilarityIndex, thumbnail, write_strip
from landsight.errors import CheckpointError, ConfigError


def query_index(index_path: str | Path, image: str | Path, k: int = 10, model: str | Path | None = None,
                indexes: Sequence[int] | None = None, device: str = "auto", html: str | Path | None = None,
                overwrite: bool = False) -> tuple[list[tuple[int, float]], SimilarityIndex]:
    """Top-`k` (index position, cosine similarity) for `image` (a chip file; a large raster is embedded whole as
    the mean of its tiles); optionally write an HTML strip of thumbnails."""
    if k < 1:
        raise ConfigError(f"-k {k} must be at least 1")
    index = SimilarityIndex.load(index_path)
    model_path = Path(model or index.model.get("path", ""))
    if not model_path.is_file():
        raise ConfigError(f"the model that built {index_path} ({model_path}) is not there; pass its file as `model`")
    classifier = Classifier.load(model_path, device)
    if classifier.model_file.sha256 != index.model.get("sha256"):
        raise CheckpointError(f"{model_path} is not the model that built {index_path} (sha256 differs); pass the "
                              "same `model` or rebuild the index")
    chips = list(iter_inputs([image], classifier.bands, 10**9, indexes))
    vector = classifier.embed([chips[0].data])[0]
    results = index.search(vector, k)
    if html:
        write_strip(index, thumbnail(chips[0].data, classifier.bands), results, str(image), html, overwrite)
    return results, index
