"""Compare predictions with open data (OSM, official footprints): per-tile IoU/QoD, per-feature status, reports.

Geo code only: never imports torch or click.
"""

from landsight.compare.core import compare_prediction
from landsight.compare.features import MatchParams, match_features
from landsight.compare.tiles import TileGrid, qod, tile_iou

__all__ = ["MatchParams", "TileGrid", "compare_prediction", "match_features", "qod", "tile_iou"]
