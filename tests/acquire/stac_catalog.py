"""A static STAC catalogue (written with pystac) of the shipped Sentinel-2 crop as single-band COGs.

Layout under ROOT: cogs/B02.tif B03 B04 B08 (10 m, as shipped) and B8A.tif (20 m: B08 averaged 2 x 2, to test
resampling onto one grid); catalog.json -> collection s2-coast -> items s2-coast-clear (2016-06-01, 5 % cloud) and
s2-coast-cloudy (2016-07-01, 80 % cloud), both pointing at the same COGs.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pystac
import rasterio
import shapely
from rasterio.warp import transform_bounds

from tests.conftest import DATA

S2 = DATA / "sentinel2-coast" / "s2-crop.tif"
BANDS = {"B02": "blue", "B03": "green", "B04": "red", "B08": "nir"}
EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
BLOCK = 128


def write_cogs(folder: Path) -> dict[str, Path]:
    """One COG per band (deflate, 128 px blocks) plus the 20 m B8A; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    with rasterio.open(S2) as src:
        data, profile = src.read(), src.profile
    base = {"driver": "COG", "count": 1, "dtype": "uint16", "crs": profile["crs"], "compress": "DEFLATE",
            "blocksize": BLOCK}
    for i, name in enumerate(BANDS):
        paths[name] = folder / f"{name}.tif"
        with rasterio.open(paths[name], "w", width=data.shape[2], height=data.shape[1],
                           transform=profile["transform"], **base) as dst:
            dst.write(data[i], 1)
            dst.set_band_description(1, name)
    coarse = data[3].reshape(data.shape[1] // 2, 2, data.shape[2] // 2, 2).mean(axis=(1, 3)).round().astype(np.uint16)
    t = profile["transform"]
    paths["B8A"] = folder / "B8A.tif"
    with rasterio.open(paths["B8A"], "w", width=coarse.shape[1], height=coarse.shape[0],
                       transform=rasterio.Affine(t.a * 2, 0, t.c, 0, t.e * 2, t.f), **base) as dst:
        dst.write(coarse, 1)
    return paths


def write_catalog(root: Path) -> Path:
    """Write COGs and a self-contained static catalogue under `root`; returns catalog.json."""
    cogs = write_cogs(root / "cogs")
    with rasterio.open(S2) as src:
        west, south, east, north = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
    geometry = shapely.geometry.mapping(shapely.box(west, south, east, north))
    catalog = pystac.Catalog("landsight-test", "Shipped Sentinel-2 crop as COGs")
    extent = pystac.Extent(pystac.SpatialExtent([[west, south, east, north]]),
                           pystac.TemporalExtent([[dt.datetime(2016, 6, 1, tzinfo=dt.UTC), None]]))
    collection = pystac.Collection("s2-coast", "Sentinel-2 L1C crop, Virginia Eastern Shore", extent)
    catalog.add_child(collection)
    for item_id, day, cloud in (("s2-coast-clear", dt.datetime(2016, 6, 1, 15, 50, tzinfo=dt.UTC), 5.0),
                                ("s2-coast-cloudy", dt.datetime(2016, 7, 1, 15, 50, tzinfo=dt.UTC), 80.0)):
        item = pystac.Item(item_id, geometry, [west, south, east, north], day, {"eo:cloud_cover": cloud},
                           stac_extensions=[EO])
        for name, path in cogs.items():
            common = BANDS.get(name, "nir08")
            item.add_asset(name, pystac.Asset(str(path), media_type=pystac.MediaType.COG, roles=["data"],
                                              extra_fields={"eo:bands": [{"name": name, "common_name": common}]}))
        collection.add_item(item)
    catalog.normalize_hrefs(str(root))
    catalog.make_all_asset_hrefs_relative()
    catalog.save(pystac.CatalogType.SELF_CONTAINED)
    return root / "catalog.json"
