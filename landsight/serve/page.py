"""The map page at `/`: Leaflet (the copy bundled for the review pages, never a CDN) over the server's own tiles."""

from __future__ import annotations

from importlib import resources

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles


def map_page() -> str:
    """The page's HTML."""
    return resources.files("landsight.serve").joinpath("static", "index.html").read_text(encoding="utf-8")


def mount_assets(app: FastAPI) -> None:
    """Serve Leaflet at /assets/leaflet/ and the page's script and style at /assets/map/."""
    leaflet = resources.files("landsight.review").joinpath("assets")
    own = resources.files("landsight.serve").joinpath("static")
    app.mount("/assets/leaflet", StaticFiles(directory=str(leaflet)), name="leaflet")
    app.mount("/assets/map", StaticFiles(directory=str(own)), name="map")
