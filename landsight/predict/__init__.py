"""Whole-raster prediction: batched windows, blended overlaps, bounded memory, georeferenced COG output."""

from landsight.predict.raster import predict_raster

__all__ = ["predict_raster"]
