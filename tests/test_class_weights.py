"""The one class-weight policy (dataset check, segmentation `--class-weights auto`, classifiers)."""

import pytest

from landsight.labels.weights import class_weights


def test_single_label_weights():
    assert class_weights([300, 100]) == pytest.approx([0.732051, 1.267949])  # sqrt of inverse frequency, mean 1
    assert class_weights([5, 5, 0]) == [1.0, 1.0, 1.0]  # absent classes are neutral
    assert class_weights([1_000_000, 1]) == [0.1, 1.998002]  # clipped: one rare pixel must not dominate
    assert class_weights([0, 0]) == [1.0, 1.0]


def test_multi_label_weights():
    assert class_weights([6, 2, 0], multi_label=True, total=8) == [0.333333, 3.0, 1.0]  # negatives / positives
    with pytest.raises(ValueError, match="number of samples"):
        class_weights([6, 2], multi_label=True)
