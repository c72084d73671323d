"""Regenerate the Sentinel-2 test crop and its sparse labels from the shared sample (run once, by hand).

The crop is 384 x 384 px of the real L1C scene (bands B02 B03 B04 B08). Labels are sparse polygons derived from
spectral indices on the real pixels (water: NDWI > 0.3; vegetation: NDVI > 0.55; bare/built: 0.05 < NDVI < 0.25 and
NDWI < 0), opened, shrunk by 20 m and limited to the largest few per class, like hand-drawn training polygons.
"""

import json
import sys

import numpy as np
import rasterio
import shapely
from rasterio.features import shapes
from rasterio.windows import Window
from scipy import ndimage

SOURCE = sys.argv[1] if len(sys.argv) > 1 else "../../../../shared/data/sentinel2-coast/s2-l1c-b02-b03-b04-b08.tif"
WINDOW = Window(384, 384, 384, 384)

with rasterio.open(SOURCE) as src:
    data = src.read(window=WINDOW)
    profile = src.profile | {"width": 384, "height": 384, "transform": src.window_transform(WINDOW),
                             "blockxsize": 128, "blockysize": 128, "predictor": 2}
with rasterio.open("s2-crop.tif", "w", **profile) as dst:
    dst.write(data)
    dst.descriptions = ("B02", "B03", "B04", "B08")

d = data.astype(np.float64)
ndvi = (d[3] - d[2]) / (d[3] + d[2] + 1e-6)
ndwi = (d[1] - d[3]) / (d[1] + d[3] + 1e-6)
rules = {"water": ndwi > 0.3, "vegetation": ndvi > 0.55, "bare": (ndvi > 0.05) & (ndvi < 0.25) & (ndwi < 0)}
features = []
for name, mask in rules.items():
    mask = ndimage.binary_opening(mask, iterations=2)
    polys = [shapely.geometry.shape(g).buffer(-20) for g, v in
             shapes(mask.astype(np.uint8), mask=mask, transform=profile["transform"]) if v == 1]
    polys = sorted((p for p in polys if p.area > 2000), key=lambda p: -p.area)[:4]
    features += [{"type": "Feature", "properties": {"class": name},
                  "geometry": shapely.geometry.mapping(shapely.simplify(p, 10))} for p in polys]
with open("labels.geojson", "w") as f:
    json.dump({"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "EPSG:32618"}},
               "features": features}, f)
print(len(features), "features")
