"""The sparse-label recipe on the NC land-cover polygons: chips around labelled pixels, each class alike, and
validation by whole polygons."""

import json
import random
from collections import Counter

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from landsight.config import TrainConfig
from landsight.errors import ConfigError
from landsight.imagery.windows import Split, train_positions
from landsight.labels.classes import IGNORE_VALUE, ClassTable
from landsight.labels.vectors import read_features, table_from_field
from landsight.train.polygon_split import choose_validation_polygons
from landsight.train.prepare import prepare_training_data
from landsight.train.sampling import class_positions
from landsight.train.task import epoch_chips
from tests.conftest import DATA

NC = DATA / "nc-landcover"


@pytest.fixture(scope="module")
def nc_data(tmp_path_factory):
    image, labels = NC / "landsat7-2000.tif", NC / "landcover-polygons.geojson"
    with rasterio.open(image) as src:
        table = table_from_field(read_features(labels, src.crs), "label", background=False)
    return prepare_training_data([(str(image), str(labels))], tmp_path_factory.mktemp("nc"), table, "label", False,
                                 TrainConfig(chip_size=64))


def read(path):
    with rasterio.open(path) as src:
        return src.read(1)


def test_sparse_polygons_get_the_sparse_recipe(nc_data):
    assert nc_data.recipe["sampling"] == "labels" and nc_data.recipe["validation"] == "polygons"
    assert float(nc_data.recipe["labelled_share"]) < 0.1


def test_every_training_chip_holds_labelled_pixels_and_classes_come_alike(nc_data):
    lut = nc_data.classes.index_lut()
    chips = epoch_chips(nc_data, 700, random.Random(0))
    seen = np.zeros(len(nc_data.classes), dtype=np.int64)
    masks = [lut[read(pair.mask)] for pair in nc_data.pairs]
    for i, w in chips:
        channels = masks[i][int(w.row_off):int(w.row_off + w.height), int(w.col_off):int(w.col_off + w.width)]
        assert (channels != IGNORE_VALUE).any(), w
        seen += np.bincount(np.unique(channels[channels != IGNORE_VALUE]), minlength=len(seen))
    assert seen.min() >= 700 / len(seen) * 0.6  # every class in many chips, however few its pixels


def test_validation_polygons_are_out_of_training_and_covered_by_validation_chips(nc_data):
    pair, split = nc_data.pairs[0], nc_data.splits[0]
    train, held_out = read(pair.mask), read(pair.val_mask)
    assert ((train != IGNORE_VALUE) & (held_out != IGNORE_VALUE)).sum() == 0
    assert (held_out != IGNORE_VALUE).sum() > 0 and len(split.val) > 0
    covered = np.zeros(train.shape, dtype=bool)
    for w in split.val:
        covered[int(w.row_off):int(w.row_off + w.height), int(w.col_off):int(w.col_off + w.width)] = True
    assert covered[held_out != IGNORE_VALUE].all()
    # every class with two or more polygons has one held out; a class's only polygon stays in training
    counts = Counter(f["properties"]["label"] for f in json.loads((NC / "landcover-polygons.geojson").read_text())
                     ["features"])
    several = {nc_data.classes.value_of(name) for name, n in counts.items() if n >= 2}
    assert set(np.unique(held_out[held_out != IGNORE_VALUE]).tolist()) == several
    assert set(np.unique(train[train != IGNORE_VALUE]).tolist()) == set(nc_data.classes.values)


def test_held_out_polygons_per_class():
    values = np.array([1, 1, 1, 1, 1, 2, 2, 3])
    held = choose_validation_polygons(values, 0.2, seed=0)
    assert held[values == 1].sum() == 1 and held[values == 2].sum() == 1 and held[values == 3].sum() == 0
    assert (choose_validation_polygons(values, 0.2, seed=0) == held).all()
    assert not choose_validation_polygons(values, 0.0, seed=0).any()


def test_class_positions_match_a_direct_count(tmp_path):
    rng = np.random.default_rng(1)
    mask = np.full((100, 90), IGNORE_VALUE, dtype=np.uint8)
    mask[rng.random(mask.shape) < 0.01] = 1
    mask[40:44, 10:70] = 2
    path = tmp_path / "mask.tif"
    profile = {"driver": "GTiff", "width": 90, "height": 100, "count": 1, "dtype": "uint8", "crs": "EPSG:32616",
               "transform": rasterio.transform.from_origin(0, 100, 1, 1)}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(mask, 1)
    table = ClassTable.from_list([{"value": 1, "name": "a"}, {"value": 2, "name": "b"}])
    split = Split((3, 5, 90, 100), ((35, 37, 67, 69),), (Window(35, 37, 32, 32),), 32)
    positions = train_positions(split)
    by_class = class_positions(str(path), split, positions, table.index_lut(), 2)
    keep = np.ones(mask.shape, dtype=bool)
    keep[37:69, 35:67] = False
    for k, value in enumerate((1, 2)):
        expected = [j for j, (c0, r0, c1, r1) in enumerate(positions)
                    if ((mask[r0:r1, c0:c1] == value) & keep[r0:r1, c0:c1]).any()]
        assert by_class[k].tolist() == expected and expected


def test_one_polygon_per_class_falls_back_to_blocks_and_polygons_need_ignored_background(tmp_path):
    image, labels = NC / "landsat7-2000.tif", NC / "landcover-polygons.geojson"
    collection = json.loads(labels.read_text())
    firsts = {f["properties"]["label"]: f for f in reversed(collection["features"])}
    single = tmp_path / "single.geojson"
    single.write_text(json.dumps({**collection, "features": list(firsts.values())}))
    with rasterio.open(image) as src:
        table = table_from_field(read_features(single, src.crs), "label", background=False)
    data = prepare_training_data([(str(image), str(single))], tmp_path / "w", table, "label", False,
                                 TrainConfig(chip_size=64))
    assert data.recipe["validation"] == "blocks" and data.pairs[0].val_mask is None
    with rasterio.open(image) as src:
        with_background = table_from_field(read_features(labels, src.crs), "label", background=True)
    with pytest.raises(ConfigError, match="background"):
        prepare_training_data([(str(image), str(labels))], tmp_path / "w2", with_background, "label", True,
                              TrainConfig(chip_size=64, validation="polygons"))
