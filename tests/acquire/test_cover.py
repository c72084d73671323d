"""`landsight cover`: XYZ covers equal mercantile's, grid covers, blocked splits, files, bad input."""

import csv
import json

import mercantile
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from landsight.acquire.area import area_from_bounds
from landsight.acquire.cover import GridCell, blocked_split, grid_cover, xyz_cover
from landsight.acquire.coverfile import read_cover, write_cover
from tests.conftest import DATA

S2 = DATA / "sentinel2-coast" / "s2-crop.tif"


@st.composite
def bboxes(draw):
    west = draw(st.floats(-180, 179.9))
    south = draw(st.floats(-85, 84.9))
    width = draw(st.floats(1e-4, 3.0))
    height = draw(st.floats(1e-4, 3.0))
    return west, south, min(180.0, west + width), min(85.0, south + height)


@settings(max_examples=150, deadline=None)
@given(bboxes(), st.integers(0, 12))
def test_xyz_cover_equals_mercantile(bbox, zoom):
    tiles = xyz_cover(area_from_bounds(*bbox, "test"), zoom)
    expected = sorted(mercantile.tiles(*bbox, zoom), key=lambda t: (t.z, t.x, t.y))
    assert tiles == expected
    assert len(set(tiles)) == len(tiles)


def test_cover_cli_writes_csv_and_geojson_that_read_back(invoke, tmp_path):
    result = invoke("cover", "--bbox", "-75.75,37.55,-75.7,37.6", "--zoom", "16", "-o", tmp_path / "cover.csv")
    assert result.exit_code == 0, result.output
    expected = list(mercantile.tiles(-75.75, 37.55, -75.7, 37.6, 16))
    rows = list(csv.reader((tmp_path / "cover.csv").open()))
    assert rows[0] == ["x", "y", "z"] and len(rows) - 1 == len(expected) == 120
    cells, splits = read_cover(tmp_path / "cover.csv")
    assert set(cells) == set(expected) and splits == [""] * len(cells)
    features = json.loads((tmp_path / "cover.geojson").read_text())["features"]
    assert len(features) == len(expected)
    first = features[0]
    tile = mercantile.Tile(first["properties"]["x"], first["properties"]["y"], first["properties"]["z"])
    outline = shapely.geometry.shape(first["geometry"])
    assert shapely.normalize(outline).equals_exact(shapely.normalize(shapely.box(*mercantile.bounds(tile))), 1e-8)
    assert read_cover(tmp_path / "cover.geojson")[0] == cells


def test_geojson_area_keeps_only_intersecting_tiles(invoke, tmp_path):
    area = tmp_path / "triangle.geojson"
    area.write_text(json.dumps({"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},
                    "geometry": {"type": "Polygon", "coordinates": [[[-75.75, 37.55], [-75.7, 37.55],
                                                                     [-75.75, 37.6], [-75.75, 37.55]]]}}]}))
    result = invoke("cover", "--geojson", area, "--zoom", "16", "-o", tmp_path / "tri")
    assert result.exit_code == 0, result.output
    cells, _ = read_cover(tmp_path / "tri.csv")
    box_tiles = set(mercantile.tiles(-75.75, 37.55, -75.7, 37.6, 16))
    triangle = shapely.Polygon([(-75.75, 37.55), (-75.7, 37.55), (-75.75, 37.6)])
    assert set(cells) == {t for t in box_tiles if shapely.box(*mercantile.bounds(t)).intersects(triangle)}
    assert 60 <= len(cells) < 80  # half of the 10 x 12 tiles plus those the diagonal crosses


def test_grid_cover_of_a_raster_covers_its_footprint(invoke, tmp_path):
    result = invoke("cover", "--raster", S2, "--grid-crs", "32618", "--grid-size", "1000", "-o", tmp_path / "g.csv")
    assert result.exit_code == 0, result.output
    cells, _ = read_cover(tmp_path / "g.csv")
    assert all(isinstance(c, GridCell) and c.epsg == 32618 and c.size == 1000 for c in cells)
    import rasterio
    with rasterio.open(S2) as src:
        footprint = shapely.box(*src.bounds)
    union = shapely.union_all([shapely.box(*c.bounds) for c in cells])
    assert union.contains(footprint.buffer(-1))  # 3840 m square, off the 1 km grid: 5 x 5 or 4 x 5 cells
    assert 16 <= len(cells) <= 25


def test_blocked_split_keeps_blocks_together_and_meets_fractions(tmp_path):
    cells = xyz_cover(area_from_bounds(-75.9, 37.4, -75.5, 37.8, "test"), 15)
    names = blocked_split(cells, (0.8, 0.2), 4, seed=1)
    by_block = {}
    for cell, name in zip(cells, names, strict=True):
        by_block.setdefault((cell.x // 4, cell.y // 4), set()).add(name)
    assert all(len(v) == 1 for v in by_block.values())
    share = names.count("validation") / len(names)
    assert abs(share - 0.2) <= 16 / len(names)  # within one block of 4 x 4 tiles
    assert names == blocked_split(cells, (0.8, 0.2), 4, seed=1)
    write_cover(tmp_path / "s", cells, names)
    assert read_cover(tmp_path / "s.csv") == (cells, names)


def test_grid_cover_direct():
    cells = grid_cover(area_from_bounds(-75.75, 37.55, -75.7, 37.6, "t"), 32618, 2560)
    assert cells == sorted(cells) and len(cells) >= 4


@pytest.mark.parametrize("args, fragment", [
    (["--bbox", "-75.7,37.6,-75.75,37.55", "--zoom", "10"], "inverted"),
    (["--bbox", "-200,10,-190,20", "--zoom", "10"], "longitudes must lie within"),
    (["--bbox", "10,95,20,96", "--zoom", "10"], "latitudes must lie within"),
    (["--bbox", "1,2,3", "--zoom", "10"], "not four comma-separated numbers"),
    (["--bbox", "1,2,3,4", "--zoom", "25"], "--zoom 25 is outside 0..24"),
    (["--bbox", "1,2,3,4", "--zoom", "5", "--grid-crs", "3857", "--grid-size", "10"], "either --zoom"),
    (["--bbox", "1,2,3,4", "--grid-crs", "999999", "--grid-size", "10"], "not a known EPSG code"),
    (["--bbox", "1,2,3,4", "--grid-crs", "3857", "--grid-size", "-5"], "positive"),
    (["--bbox", "1,2,3,4", "--grid-crs", "3857"], "needs both"),
    (["--bbox", "1,2,3,4", "--zoom", "5", "--split", "0.8,0.3"], "sum to 1"),
    (["--bbox", "1,2,3,4", "--geojson", "x.geojson", "--zoom", "5"], "exactly one of"),
    (["--bbox", "-10,-10,10,10", "--zoom", "24"], "more than"),
])
def test_bad_input_exits_2_and_writes_nothing(invoke, tmp_path, args, fragment):
    result = invoke("cover", *args, "-o", tmp_path / "c")
    assert result.exit_code == 2, result.output
    assert fragment in result.output
    assert list(tmp_path.iterdir()) == []
