"""The pixel baseline of a segmentation run: a random forest on each pixel's bands and local means, fitted on the
training pixels (outside the validation blocks) and stored as a `PixelForest`, scored like the network."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import numpy as np
import torch

from landsight.data.datasets import ChipDataset
from landsight.errors import LabelError, import_extra
from landsight.imagery.windows import block_windows, box_window
from landsight.labels.classes import IGNORE_VALUE
from landsight.models.pixel_forest import LEAF, PixelForest, pixel_features
from landsight.train.prepare import TrainingData

log = logging.getLogger(__name__)

TREES = 50
MAX_DEPTH = 16
PIXELS_PER_CLASS = 20_000
"""Most training pixels kept per class (a seeded random sample): fast to fit, and every class counts alike."""

DESCRIPTION = f"random forest ({TREES} trees) on each pixel's bands and their 3x3 and 9x9 px means"


def _training_batches(data: TrainingData, chip: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(features (P, F), channel (P,)) of the labelled training pixels, window by window over each training region."""
    chips = [(i, w) for i, split in enumerate(data.splits) for w in block_windows(box_window(split.region), chip)]
    dataset = ChipDataset(data.pairs, chips, data.bands, data.normalization, data.classes.index_lut())
    for i in range(len(dataset)):
        sample = dataset[i]
        pair, window = chips[i]
        keep = torch.from_numpy(data.splits[pair].outside_validation(window)) & (sample["target"] != IGNORE_VALUE)
        features = pixel_features(sample["image"][None])[0]
        yield features[:, keep].T, sample["target"][keep]


def sample_training_pixels(data: TrainingData, chip: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """At most `PIXELS_PER_CLASS` random training pixels of each class: features (N, F) float32 and channels (N,).

    Kept as a bounded random sample while reading (each class's pool is cut back whenever it doubles)."""
    rng = np.random.default_rng(seed)
    pools: dict[int, list[np.ndarray]] = {}
    sizes: dict[int, int] = {}
    for features, channels in _training_batches(data, chip):
        for value in torch.unique(channels).tolist():
            pools.setdefault(value, []).append(features[channels == value].numpy())
            sizes[value] = sizes.get(value, 0) + int((channels == value).sum())
            if sizes[value] > 2 * PIXELS_PER_CLASS:
                pool = np.concatenate(pools[value])
                pools[value] = [pool[rng.choice(len(pool), PIXELS_PER_CLASS, replace=False)]]
                sizes[value] = PIXELS_PER_CLASS
    if not pools:
        raise LabelError("no labelled training pixel outside the validation blocks; add labels or lower `val_fraction`")
    xs, ys = [], []
    for value in sorted(pools):
        pool = np.concatenate(pools[value])
        if len(pool) > PIXELS_PER_CLASS:
            pool = pool[rng.choice(len(pool), PIXELS_PER_CLASS, replace=False)]
        xs.append(pool)
        ys.append(np.full(len(pool), value, dtype=np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def fit_pixel_forest(data: TrainingData, chip: int, seed: int) -> PixelForest:
    """Fit the baseline forest on the training pixels (deterministic for a seed)."""
    ensemble = import_extra("sklearn.ensemble", "the pixel baseline needs scikit-learn: pip install 'landsight[ml]'")
    x, y = sample_training_pixels(data, chip, seed)
    log.info("pixel baseline: %s, fitted on %d training pixels", DESCRIPTION, len(y))
    forest = ensemble.RandomForestClassifier(n_estimators=TREES, max_depth=MAX_DEPTH, min_samples_leaf=2,
                                             random_state=seed, n_jobs=1).fit(x, y)
    return to_module(forest, data.bands.count, len(data.classes))


def to_module(forest: object, in_channels: int, num_classes: int) -> PixelForest:
    """A fitted scikit-learn forest (classes = channel indexes) as a `PixelForest`, trees padded to one size."""
    trees = [estimator.tree_ for estimator in forest.estimators_]  # type: ignore[attr-defined]
    classes = np.asarray(forest.classes_, dtype=np.int64)  # type: ignore[attr-defined]
    nodes = max(t.node_count for t in trees)
    feature = np.zeros((len(trees), nodes), dtype=np.int64)
    threshold = np.zeros((len(trees), nodes), dtype=np.float64)
    left = np.full((len(trees), nodes), LEAF, dtype=np.int64)
    right = np.full((len(trees), nodes), LEAF, dtype=np.int64)
    value = np.zeros((len(trees), nodes, num_classes), dtype=np.float32)
    for k, tree in enumerate(trees):
        n = tree.node_count
        feature[k, :n] = np.maximum(tree.feature, 0)
        threshold[k, :n] = tree.threshold
        left[k, :n], right[k, :n] = tree.children_left, tree.children_right
        shares = tree.value[:, 0, :]
        value[k, :n][:, classes] = shares / np.maximum(shares.sum(axis=1, keepdims=True), 1e-12)
    module = PixelForest(in_channels, num_classes)
    state = {"feature": feature, "threshold": threshold, "left": left, "right": right, "value": value,
             "depth": np.asarray(max(t.max_depth for t in trees), dtype=np.int64)}
    module.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    return module.eval()

