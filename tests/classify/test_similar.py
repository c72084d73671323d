"""`landsight similar index | query`: backbone embeddings, cosine top-k, precision@k, thumbnail strip."""

import numpy as np

from landsight.classify.similar import SimilarityIndex, precision_at_k
from tests.classify.conftest import run


def test_index_then_query_finds_the_query_chip_first(folder_model, chip_dir, tmp_path):
    index = tmp_path / "chips.npz"
    result = run("similar", "index", folder_model, chip_dir, "-o", index)
    assert result.exit_code == 0, result.output
    n = len(list(chip_dir.rglob("*.tif")))
    assert f"indexed {n} chip(s)" in result.output and "leave-one-out precision@5" in result.output
    built = SimilarityIndex.load(index)
    assert built.vectors.shape[0] == n and np.allclose(np.linalg.norm(built.vectors, axis=1), 1, atol=1e-4)
    assert set(built.labels) == {"clear", "cloudy"} and built.thumbnails.shape[1:] == (48, 48, 3)
    query = sorted((chip_dir / "cloudy").glob("*.tif"))[3]
    strip = tmp_path / "strip.html"
    result = run("similar", "query", index, query, "-k", "10", "--html", strip)
    assert result.exit_code == 0, result.output
    lines = [line.split() for line in result.output.splitlines() if line.strip()[:1].isdigit()]
    assert len(lines) == 10 and lines[0][3] == str(query) and float(lines[0][1]) > 0.999
    assert [float(line[1]) for line in lines] == sorted((float(line[1]) for line in lines), reverse=True)
    page = strip.read_text()
    assert "data:image/png;base64" in page and query.name in page


def test_precision_at_k_counts_same_class_neighbours():
    vectors = np.eye(4)[[0, 0, 1, 1, 2, 2]] + 0.01 * np.arange(6)[:, None]
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    targets = np.eye(3)[[0, 0, 1, 1, 2, 2]]
    assert precision_at_k(vectors, targets, [0, 2, 4], k=1) == 1.0
    assert abs(precision_at_k(vectors, targets, [0], k=2) - 0.5) < 1e-9


def test_query_refuses_another_model(gate_model, folder_model, chip_dir, tmp_path):
    index = tmp_path / "i.npz"
    assert run("similar", "index", folder_model, chip_dir / "clear", "-o", index).exit_code == 0
    query = next((chip_dir / "clear").glob("*.tif"))
    result = run("similar", "query", index, query, "--model", gate_model)
    assert result.exit_code == 2 and "not the model that built" in result.output
