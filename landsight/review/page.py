"""Build the self-contained review page: Leaflet and its CSS copied beside the page, data and app inlined."""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from landsight.review.render import LatLngBounds

ASSET_FILES = ("leaflet.js", "leaflet.css", "LICENSE-leaflet")
"""Leaflet 1.9.4 (BSD-2-Clause) files copied into REPORT_DIR/assets/."""


@dataclasses.dataclass(frozen=True)
class ImageLayer:
    """A PNG overlay: `href` relative to the page, `bounds` ((south, west), (north, east)) in degrees."""

    name: str
    href: str
    bounds: LatLngBounds
    opacity: float = 1.0
    visible: bool = True


@dataclasses.dataclass(frozen=True)
class VectorLayer:
    """A GeoJSON FeatureCollection in WGS 84 drawn in `color`; `fill` is the fill opacity (0 = outline only)."""

    name: str
    data: dict[str, Any]
    color: str
    fill: float = 0.35
    weight: float = 1.5
    visible: bool = True


@dataclasses.dataclass(frozen=True)
class ReviewItems:
    """What the reviewer walks through: features with an `id` property (worst tiles, largest changes)."""

    title: str
    data: dict[str, Any]
    label_keys: tuple[str, ...] = ()
    max_zoom: int = 20


def _package_text(name: str) -> str:
    return resources.files("landsight.review").joinpath(name).read_text(encoding="utf-8")


def copy_assets(out_dir: Path) -> Path:
    """Copy Leaflet (JS, CSS, images, licence) into `out_dir`/assets; returns that folder."""
    assets = out_dir / "assets"
    (assets / "images").mkdir(parents=True, exist_ok=True)
    source = resources.files("landsight.review").joinpath("assets")
    for name in ASSET_FILES:
        (assets / name).write_bytes(source.joinpath(name).read_bytes())
    for entry in source.joinpath("images").iterdir():
        if entry.name.endswith(".png"):
            (assets / "images" / entry.name).write_bytes(entry.read_bytes())
    return assets


def _embed_json(payload: dict[str, Any]) -> str:
    """JSON safe inside a <script> element (no '<' can close it)."""
    return json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("<", "\\u003c")


def render_page(title: str, payload: dict[str, Any]) -> str:
    """The review HTML: template + inlined CSS, data and app script."""
    page = _package_text("template.html")
    page = page.replace("{{CSS}}", _package_text("review.css")).replace("{{APP_JS}}", _package_text("review.js"))
    return page.replace("{{TITLE}}", html.escape(title)).replace("{{DATA}}", _embed_json(payload))


def _fields(item: ImageLayer | VectorLayer | ReviewItems) -> dict[str, Any]:
    """The fields of a layer or item, sharing their values (`dataclasses.asdict` would deep-copy whole layers)."""
    return {field.name: getattr(item, field.name) for field in dataclasses.fields(item)}


def write_review_page(out_dir: str | Path, title: str, images: Sequence[ImageLayer], layers: Sequence[VectorLayer],
                      items: ReviewItems, provenance: dict[str, Any], name: str = "review.html") -> Path:
    """Write `out_dir`/`name` and its assets; the page works from file:// or any local web server, offline."""
    out_dir = Path(out_dir)
    copy_assets(out_dir)
    payload = {
        "title": title,
        "storage_key": f"{title}|{provenance.get('created_utc', '')}",
        "provenance": provenance,
        "images": [{**_fields(i), "bounds": [list(i.bounds[0]), list(i.bounds[1])]} for i in images],
        "layers": [_fields(layer) for layer in layers],
        "items": {**_fields(items), "label_keys": list(items.label_keys)},
    }
    path = out_dir / name
    path.write_text(render_page(title, payload), encoding="utf-8")
    return path
