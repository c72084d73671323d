"""Review map: a self-contained Leaflet page (assets bundled, no CDN) to walk through and mark report items."""

from landsight.review.page import ImageLayer, ReviewItems, VectorLayer, write_review_page
from landsight.review.render import render_image, render_mask, render_palette

__all__ = [
    "ImageLayer", "ReviewItems", "VectorLayer", "render_image", "render_mask", "render_palette", "write_review_page",
]
