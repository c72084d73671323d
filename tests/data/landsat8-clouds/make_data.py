"""Regenerate the Landsat-8 test crop and its quality band from the shared sample (run once, by hand).

A 512 x 512 px window (rows 64-576, columns 0-512) of the real L1 scene, bands B2 B3 B4 B5 (blue, green, red, NIR,
uint16 DN, 30 m, EPSG:32616), and the same window of the USGS quality band (BQA, bits 14-15 == 3: high-confidence
cloud). The window holds the scene's cloud bank and clear land beside it.
"""

import sys

import rasterio
from rasterio.windows import Window

SOURCE = sys.argv[1] if len(sys.argv) > 1 else "../../../../shared/data/landsat8-clouds"
WINDOW = Window(0, 64, 512, 512)

for name, out, descriptions in (("l8-b2-b3-b4-b5.tif", "l8-crop.tif", ("blue", "green", "red", "nir")),
                                ("l8-bqa.tif", "l8-bqa-crop.tif", ("BQA",))):
    with rasterio.open(f"{SOURCE}/{name}") as src:
        data = src.read(window=WINDOW)
        profile = src.profile | {"width": WINDOW.width, "height": WINDOW.height,
                                 "transform": src.window_transform(WINDOW), "blockxsize": 128, "blockysize": 128,
                                 "tiled": True, "compress": "deflate", "predictor": 2}
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
        dst.descriptions = descriptions
    print(out, data.shape)
