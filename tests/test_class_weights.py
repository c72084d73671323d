"""The one class-weight policy (dataset check, segmentation `--class-weights auto`, classifier losses)."""

import numpy as np
import pytest
import torch

from landsight.labels.weights import class_weights


def test_single_label_weights():
    assert class_weights(np.array([300.0, 100.0])).tolist() == pytest.approx([(2 / 3) ** 0.5, 2 ** 0.5])
    assert class_weights(np.array([5.0, 5.0, 0.0])).tolist() == pytest.approx([(2 / 3) ** 0.5] * 2 + [1.0])
    assert class_weights(np.array([1e6, 1.0])).tolist() == pytest.approx([0.7071, 10.0], abs=1e-4)  # clipped
    assert class_weights(np.array([0.0, 0.0])).tolist() == [1.0, 1.0]


def test_multi_label_weights():
    assert class_weights(np.array([6.0, 2.0, 0.0]), multi_label=True, total=8).tolist() == pytest.approx(
        [1 / 3, 3.0, 1.0])  # negatives / positives; absent classes neutral
    with pytest.raises(ValueError, match="number of samples"):
        class_weights(np.array([6.0, 2.0]), multi_label=True)


def test_torch_and_numpy_agree():
    counts = [17.0, 13.0, 0.0, 250.0]
    from_torch = class_weights(torch.tensor(counts), total=280)
    assert isinstance(from_torch, torch.Tensor) and from_torch.dtype == torch.float32
    assert from_torch.tolist() == pytest.approx(class_weights(np.array(counts, np.float32), total=280).tolist())
