"""Chip sources, rules, the blocked split and normalization on real pixels (no training)."""

import json

import numpy as np
import pytest

from landsight.classify.automl import format_budget, parse_budget
from landsight.classify.chips import fit_to_chip, resize_chip, tile_chip
from landsight.classify.folders import load_chip_source
from landsight.classify.rules import ChipGrid, CloudRule, chips_from_cloud_mask, chips_from_labels
from landsight.classify.split import save_split, split_chips
from landsight.errors import ConfigError
from landsight.imagery.normalize import InputStats, fit_normalization, normalize
from landsight.labels.classes import ClassTable
from landsight.labels.rasterize import rasterize_labels
from tests.classify.conftest import BIGEARTHNET, L8, L8_QA, NC_IMAGE, NC_LABELS, write_chip


@pytest.fixture(scope="module")
def cloud_chips():
    return chips_from_cloud_mask(L8, L8_QA, CloudRule(), ChipGrid(32, 32), band_names=("blue", "green", "red", "nir"))


def test_resize_and_tiling_keep_values_and_fill_nodata():
    chip = np.arange(2 * 16 * 16, dtype=np.float32).reshape(2, 16, 16)
    chip[0, 0, 0] = np.nan
    up = resize_chip(chip, 32)
    assert up.shape == (2, 32, 32) and np.isfinite(up).all()
    down = resize_chip(np.ones((1, 64, 64), np.float32) * 7, 16)
    assert np.allclose(down, 7)
    tiles = tile_chip(np.zeros((3, 100, 70), np.float32), 32)
    assert len(tiles) == 4 * 3 and all(t.shape == (3, 32, 32) for t in tiles)
    assert len(fit_to_chip(np.zeros((3, 60, 60), np.float32), 32)) == 1  # up to 2x: resized
    assert len(fit_to_chip(np.zeros((3, 65, 65), np.float32), 32)) == 9  # larger: tiled


def test_landsat_qa_bits_14_15_mark_cloud():
    rule = CloudRule(cloudy_if=0.5)
    qa = np.array([[20480, 61440], [53248, 28672]], dtype=np.uint16)  # real BQA values of the sample
    assert rule.cloud(qa).tolist() == [[False, True], [True, False]]
    assert rule.label(qa) == ["cloudy"]
    assert CloudRule(qa_bits=None).cloud(np.array([0, 1, 255])).tolist() == [False, True, True]


def test_cloud_mask_chips_are_georeferenced_and_labelled(cloud_chips):
    assert cloud_chips.classes == ["clear", "cloudy"]
    assert len(cloud_chips) == 256 and cloud_chips.images.shape[1:] == (4, 32, 32)
    assert cloud_chips.counts() == {"clear": 171, "cloudy": 85}
    assert cloud_chips.georeferenced and cloud_chips.bands.names == ("blue", "green", "red", "nir")
    assert cloud_chips.ids[1].endswith("l8-crop.tif#32,0")
    cloudy = cloud_chips.images[cloud_chips.labels == 1].mean()
    assert cloudy > cloud_chips.images[cloud_chips.labels == 0].mean()  # clouds are bright


def test_polygon_majority_chips_from_the_nc_landcover():
    chips = chips_from_labels(NC_IMAGE, NC_LABELS, ChipGrid(8, 4), class_field="label")
    assert chips.classes == ["agriculture", "developed", "forest", "herbaceous", "sediment", "shrubland", "water"]
    assert not chips.multi_label and (chips.targets.sum(axis=1) == 1).all()
    assert len(chips) == 90 and np.isnan(chips.images).mean() < 0.05  # nodata kept as NaN, little of it
    multi = chips_from_labels(NC_IMAGE, NC_LABELS, ChipGrid(24, 12), "label", min_labelled=0.05, presence=0.02)
    assert multi.multi_label and (multi.targets.sum(axis=1) > 1).any()


def test_bigearthnet_folders_are_multi_label():
    chips = load_chip_source(BIGEARTHNET)
    assert len(chips) == 6 and chips.multi_label and chips.chip_size == 120
    assert chips.bands.names == ("B02", "B03", "B04", "B08") and chips.georeferenced
    assert "Water bodies" in chips.classes and (chips.targets.sum(axis=1) > 1).sum() == 5


def test_blocked_split_is_stratified_leak_free_and_saved(cloud_chips, tmp_path):
    split = split_chips(cloud_chips, seed=0)
    assert split.blocked and split.blocks > 10
    parts = {s: getattr(split, s) for s in ("train", "val", "test")}
    assert all((cloud_chips.targets[idx].sum(axis=0) > 0).all() for idx in parts.values())  # both classes everywhere
    train, test = cloud_chips.boxes[parts["train"]], cloud_chips.boxes[parts["test"]]
    overlap = ((train[:, None, 0] < test[None, :, 2]) & (train[:, None, 2] > test[None, :, 0])
               & (train[:, None, 1] < test[None, :, 3]) & (train[:, None, 3] > test[None, :, 1]))
    assert not overlap.any()
    assert np.array_equal(split_chips(cloud_chips, seed=0).test, split.test)
    save_split(split, cloud_chips, tmp_path / "split.json")
    saved = json.loads((tmp_path / "split.json").read_text())
    assert saved["blocked"] and len(saved["test"]) == len(split.test) and saved["test"][0].startswith(str(L8))


def test_split_notes_a_class_with_few_test_chips():
    sparse = chips_from_cloud_mask(L8, L8_QA, CloudRule(), ChipGrid(64), band_names=("blue", "green", "red", "nir"))
    split = split_chips(sparse, seed=0)
    n_test = sparse.targets[split.test].sum(axis=0)
    assert n_test.min() < 10
    for name, n in zip(sparse.classes, n_test, strict=True):
        flagged = [note for note in split.notes if note.startswith(f"class {name!r} has only {int(n)} test chip")]
        assert len(flagged) == (n < 10), (name, n, split.notes)
    assert "`stride`" in " ".join(split.notes)


def test_normalization_modes_and_the_outlier_warning(cloud_chips):
    images = cloud_chips.images
    stats = fit_normalization(images)
    x = normalize(images, "dataset", stats)
    assert abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-2
    per_image = normalize(images, "per-image", stats)
    np.testing.assert_allclose(normalize(images * 1e-4 + 0.1, "per-image", stats), per_image, atol=1e-3)
    inputs = InputStats.fit(images)
    assert inputs.warning(images, cloud_chips.bands.names, "dataset") is None
    message = inputs.warning(images[:4] * 1e-4, cloud_chips.bands.names, "dataset")  # reflectance, not DN
    assert "far outside the training data" in message and "per-image" in message


def test_budgets_parse_and_format():
    assert parse_budget("90s") == 90 and parse_budget("10m") == 600 and parse_budget("1h30m") == 5400
    assert parse_budget("45") == 45 and format_budget(61) == "70s" and format_budget(301) == "6m"
    with pytest.raises(ConfigError, match="not a duration"):
        parse_budget("ten minutes")


def test_label_raster_majority_matches_the_polygons(tmp_path):
    table = ClassTable.from_names(sorted(["agriculture", "developed", "forest", "herbaceous", "sediment", "shrubland",
                                          "water"]), background=False)
    mask = tmp_path / "labels.tif"
    rasterize_labels(NC_IMAGE, NC_LABELS, mask, table, "label", background=False)
    from_raster = chips_from_labels(NC_IMAGE, mask, ChipGrid(8, 4))
    from_polygons = chips_from_labels(NC_IMAGE, NC_LABELS, ChipGrid(8, 4), class_field="label")
    assert from_raster.classes == from_polygons.classes  # names come from the mask's classes tag
    assert from_raster.counts() == from_polygons.counts()


def test_csv_manifest_with_label_lists_is_multi_label(tmp_path, cloud_chips):
    rows = ["path,labels"]
    for i in range(6):
        write_chip(tmp_path / f"c{i}.tif", cloud_chips.images[i].astype("uint16"))
        rows.append(f"c{i}.tif,{'haze;cloudy' if i % 2 else 'clear'}")
    (tmp_path / "chips.csv").write_text("\n".join(rows))
    chips = load_chip_source(tmp_path / "chips.csv")
    assert chips.multi_label and chips.classes == ["clear", "cloudy", "haze"]
    assert chips.targets.sum(axis=1).tolist() == [1, 2, 1, 2, 1, 2]
