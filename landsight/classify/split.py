"""Stratified train/validation/test split of chips; spatially blocked when the chips are georeferenced.

Georeferenced chips are grouped into square blocks (a few chip widths across) and whole blocks go to one split, so
neighbouring chips never sit on both sides; training chips that still overlap a held-out chip are dropped. Blocks
are assigned greedily so that every class gets close to its share in each split (iterative stratification).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from landsight.classify.chips import ChipSet
from landsight.errors import ConfigError
from landsight.outputs import atomic_path

SPLITS = ("train", "val", "test")
MIN_CHIPS = 5
"""Fewest chips that can be split three ways (scores on so few are anecdotes, and the report says how many)."""
FEW_TEST_CHIPS = 10
"""Below this many test chips of a class, its notes say how far one chip moves the class's test F1."""


@dataclasses.dataclass
class ChipSplit:
    """Chip indexes per split and how they were chosen."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    blocked: bool
    block_size: float | None = None
    blocks: int = 0
    dropped: int = 0
    notes: list[str] = dataclasses.field(default_factory=list)

    def sizes(self) -> dict[str, int]:
        """Chips per split."""
        return {name: len(getattr(self, name)) for name in SPLITS}

    def summary(self) -> dict[str, Any]:
        """JSON-ready description without the chip lists."""
        return {"sizes": self.sizes(), "blocked": self.blocked, "block_size": self.block_size, "blocks": self.blocks,
                "dropped_overlapping": self.dropped, "notes": self.notes}


def _groups(chips: ChipSet, block_chips: float) -> tuple[np.ndarray, float | None]:
    """Group id per chip: its spatial block when georeferenced (block side in CRS units), else the chip itself."""
    if not chips.georeferenced:
        return np.arange(len(chips)), None
    width = float(np.median(chips.boxes[:, 2] - chips.boxes[:, 0]))
    block = block_chips * width
    cx = (chips.boxes[:, 0] + chips.boxes[:, 2]) / 2
    cy = (chips.boxes[:, 1] + chips.boxes[:, 3]) / 2
    keys = [(crs, int(np.floor(x / block)), int(np.floor(y / block))) for crs, x, y in zip(chips.crs, cx, cy,
                                                                                             strict=True)]
    lookup: dict[tuple[Any, int, int], int] = {}
    return np.array([lookup.setdefault(k, len(lookup)) for k in keys]), block


def _assign(group_counts: np.ndarray, fractions: Sequence[float], seed: int) -> np.ndarray:
    """Split index per group, greedy: rarest classes first, each group to the split that lacks the largest share of
    its wanted count of the group's rarest class (ties: the split furthest below its share of chips)."""
    totals = group_counts.sum(axis=0)
    sizes = group_counts.sum(axis=1)
    want = np.outer(fractions, totals)
    want_n = np.asarray(fractions) * sizes.sum()
    have = np.zeros_like(want)
    have_n = np.zeros(len(fractions))
    order = list(range(len(group_counts)))
    random.Random(seed).shuffle(order)
    rarity = np.where(group_counts > 0, totals[None, :], np.inf).min(axis=1)
    order.sort(key=lambda g: rarity[g])
    out = np.zeros(len(group_counts), dtype=np.int64)
    for g in order:
        present = np.flatnonzero(group_counts[g])
        rare = present[np.argmin(totals[present])] if len(present) else 0
        need = (want[:, rare] - have[:, rare]) / np.maximum(want[:, rare], 1e-9)
        best = max(range(len(fractions)), key=lambda s: (float(np.round(need[s], 6)), want_n[s] - have_n[s]))
        out[g] = best
        have[best] += group_counts[g]
        have_n[best] += sizes[g]
    return out


def _fill_empty(assignment: np.ndarray, sizes: np.ndarray) -> None:
    """Give an empty validation or test split the smallest training group (in place)."""
    for split in (1, 2):
        if (assignment == split).any():
            continue
        train_groups = np.flatnonzero(assignment == 0)
        if len(train_groups) < 2:
            raise ConfigError(f"only {len(sizes)} group(s) of chips: too few for train, validation and test splits; "
                              "add chips, or pass a smaller `block_chips` so blocks are smaller")
        assignment[train_groups[np.argmin(sizes[train_groups])]] = split


def _overlapping(boxes: np.ndarray, crs: Sequence[str | None], index: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Boolean per chip of `index`: does it overlap (by more than an edge) any chip of `others` in the same CRS?"""
    hit = np.zeros(len(index), dtype=bool)
    if not len(others) or not len(index):
        return hit
    a, b = boxes[index], boxes[others]
    same_crs = np.array([[crs[i] == crs[j] for j in others] for i in index]) if len(set(crs)) > 1 else None
    for start in range(0, len(index), 512):
        part = slice(start, start + 512)
        eps = 1e-6 * (a[part, 2:3] - a[part, 0:1])
        over = ((a[part, 0:1] < b[None, :, 2] - eps) & (a[part, 2:3] > b[None, :, 0] + eps)
                & (a[part, 1:2] < b[None, :, 3] - eps) & (a[part, 3:4] > b[None, :, 1] + eps))
        if same_crs is not None:
            over &= same_crs[part]
        hit[part] = over.any(axis=1)
    return hit


def split_chips(chips: ChipSet, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                block_chips: float = 2.0) -> ChipSplit:
    """Split `chips` by `fractions` (train, validation, test), stratified by class, blocked when georeferenced."""
    if len(chips) < MIN_CHIPS:
        raise ConfigError(f"only {len(chips)} chips: at least {MIN_CHIPS} are needed to hold out validation and test "
                          "chips; add chips")
    groups, block = _groups(chips, block_chips)
    n_groups = int(groups.max()) + 1
    group_counts = np.zeros((n_groups, len(chips.classes)))
    np.add.at(group_counts, groups, chips.targets)
    sizes = np.bincount(groups, minlength=n_groups)
    assignment = _assign(group_counts, fractions, seed)
    _fill_empty(assignment, sizes)
    split_of = assignment[groups]
    index = [np.flatnonzero(split_of == s) for s in range(3)]
    dropped = 0
    if block is not None:
        held = np.concatenate([index[1], index[2]])
        train_hit = _overlapping(chips.boxes, chips.crs, index[0], held)
        val_hit = _overlapping(chips.boxes, chips.crs, index[1], index[2])
        dropped = int(train_hit.sum() + val_hit.sum())
        index[0], index[1] = index[0][~train_hit], index[1][~val_hit]
    train, val, test = index
    result = ChipSplit(train, val, test, blocked=block is not None, block_size=block, blocks=n_groups, dropped=dropped)
    result.notes = _notes(chips, result, groups)
    return result


def _notes(chips: ChipSet, split: ChipSplit, groups: np.ndarray) -> list[str]:
    """Warnings for classes that a split lacks (their scores there are undefined) or that have so few test chips
    that one chip moves their test F1 a lot."""
    notes = []
    for k, name in enumerate(chips.classes):
        members = chips.targets[:, k] > 0
        n_blocks = len(set(groups[members].tolist()))
        missing = [s for s in SPLITS if not members[getattr(split, s)].any()]
        n_test = int(members[split.test].sum())
        if missing:
            unit = "spatial block(s)" if split.blocked else "chip(s)"
            notes.append(f"class {name!r} occurs in {n_blocks} {unit}; none in {', '.join(missing)}: its "
                         f"{'/'.join(missing)} scores are undefined. Add more, separate examples of it.")
        elif n_test < FEW_TEST_CHIPS:
            notes.append(f"class {name!r} has only {n_test} test chip(s): one chip decided differently moves its test "
                         f"F1 by {1 / (2 * n_test + 1):.2f} or more. Add imagery, or cut more chips (a smaller "
                         "`stride`).")
    return notes


def save_split(split: ChipSplit, chips: ChipSet, path: str | Path, overwrite: bool = False) -> None:
    """Write the split as JSON: the summary plus the chip ids of each split."""
    payload = {**split.summary(), **{s: [chips.ids[i] for i in getattr(split, s)] for s in SPLITS}}
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(json.dumps(payload, indent=1))
