"""STAC search with pystac-client: an API's /search where the catalogue offers it, else a walk of a static
catalogue's collection filtered by area, time and cloud cover. Writes a STAC ItemCollection."""

from __future__ import annotations

import datetime as dt
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pystac
import shapely
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses
from pystac_client.warnings import FallbackToPystac, NoConformsTo

from landsight.acquire.area import Area
from landsight.acquire.errors import StacError
from landsight.outputs import atomic_path, check_output

log = logging.getLogger(__name__)


def parse_datetime_range(text: str | None) -> tuple[dt.datetime | None, dt.datetime | None]:
    """"A/B" (ISO dates or times; ".." or empty for open ends) -> aware UTC bounds; None stays unbounded."""
    if not text:
        return None, None
    parts = text.split("/")
    if len(parts) > 2:
        raise StacError(f"`datetime` {text!r} is not START/END; pass e.g. 2024-06-01/2024-08-31")
    bounds = [_parse_instant(p, end=(i == 1 or len(parts) == 1), text=text) for i, p in enumerate(parts)]
    start, end = bounds[0], bounds[-1]
    if start and end and start > end:
        raise StacError(f"`datetime` {text!r} ends before it starts; pass START/END in order")
    return start, end


def _parse_instant(part: str, end: bool, text: str) -> dt.datetime | None:
    part = part.strip()
    if part in ("", ".."):
        return None
    try:
        if len(part) == 10:
            day = dt.date.fromisoformat(part)
            clock = dt.time.max if end else dt.time.min
            return dt.datetime.combine(day, clock, tzinfo=dt.UTC)
        value = dt.datetime.fromisoformat(part.replace("Z", "+00:00"))
    except ValueError as exc:
        raise StacError(f"`datetime` {text!r}: {part!r} is not an ISO date or time; pass e.g. "
                        "2024-06-01/2024-08-31") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def open_client(url: str) -> Client:
    """Open a STAC API or static catalogue at `url` (file path or http(s) URL)."""
    try:
        return Client.open(url)
    except Exception as exc:  # pystac-client raises APIError, requests' errors, JSON and STAC errors
        raise StacError(f"cannot open the STAC catalogue {url} ({type(exc).__name__}: {str(exc)[:200]}); check the "
                        "URL (a STAC API root or a catalog.json) and that the server is running") from exc


def search(url: str, collection: str, area: Area, datetime: str | None = None, max_cloud: float | None = None,
           limit: int = 1000) -> pystac.ItemCollection:
    """Items of `collection` intersecting `area` within `datetime` with `eo:cloud_cover` <= `max_cloud`."""
    if max_cloud is not None and not 0 <= max_cloud <= 100:
        raise StacError(f"`max_cloud` {max_cloud} must lie within 0..100 (percent)")
    start, end = parse_datetime_range(datetime)
    with warnings.catch_warnings():  # a static catalogue has no conformance classes: walking it is the plan
        warnings.simplefilter("ignore", NoConformsTo)
        warnings.simplefilter("ignore", FallbackToPystac)
        return _search(url, collection, area, datetime, start, end, max_cloud, limit)


def _search(url: str, collection: str, area: Area, datetime: str | None, start: dt.datetime | None,
            end: dt.datetime | None, max_cloud: float | None, limit: int) -> pystac.ItemCollection:
    client = open_client(url)
    if client.conforms_to(ConformanceClasses.ITEM_SEARCH):
        query = {"eo:cloud_cover": {"lte": max_cloud}} if max_cloud is not None else None
        found = client.search(collections=[collection], intersects=shapely.geometry.mapping(area.geometry),
                              datetime=datetime or None, query=query, max_items=limit)
        items = list(found.items())
    else:
        items = [i for i in _collection_items(client, collection, url)
                 if _matches(i, area.geometry, start, end, max_cloud)][:limit]
    log.info("%d item(s) of %s match", len(items), collection)
    return pystac.ItemCollection(items)


def _collection_items(client: Client, collection: str, url: str) -> list[pystac.Item]:
    try:
        found = client.get_collection(collection)
    except Exception as exc:  # pystac-client: KeyError / NotFound / APIError depending on the catalogue kind
        found = None
        log.debug("collection lookup failed: %s", exc)
    if found is None or found.id != collection:  # pystac-client's static fallback returns the last one it saw
        names = sorted(c.id for c in client.get_collections())
        raise StacError(f"collection {collection!r} not found in {url}; it offers {names}")
    return list(found.get_items(recursive=True))


def _matches(item: pystac.Item, geometry: shapely.Geometry, start: dt.datetime | None, end: dt.datetime | None,
             max_cloud: float | None) -> bool:
    """Whether `item` intersects `geometry`, overlaps [start, end] and is clear enough."""
    if item.geometry is None or not shapely.geometry.shape(item.geometry).intersects(geometry):
        return False
    first = item.common_metadata.start_datetime or item.datetime
    last = item.common_metadata.end_datetime or item.datetime
    if (start and last and last < start) or (end and first and first > end):
        return False
    cloud = item.properties.get("eo:cloud_cover")
    return max_cloud is None or cloud is None or float(cloud) <= max_cloud


def write_item_collection(items: pystac.ItemCollection, output: str | Path, overwrite: bool = False) -> Path:
    """Write `items` (asset hrefs made absolute) as one ItemCollection JSON file, atomically."""
    path = check_output(output, overwrite)
    data = items.to_dict(transform_hrefs=False)
    for item, raw in zip(items, data["features"], strict=True):
        for key, asset in item.assets.items():
            raw["assets"][key]["href"] = asset.get_absolute_href() or asset.href
    with atomic_path(path, overwrite) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")
    return path


def load_items(source: str) -> list[pystac.Item]:
    """The items of a STAC Item or ItemCollection given as a file path or http(s) URL."""
    try:
        data: Any = pystac.StacIO.default().read_json(source)
    except Exception as exc:
        raise StacError(f"cannot read STAC JSON from {source} ({type(exc).__name__}: {str(exc)[:200]}); pass a "
                        "STAC Item or ItemCollection file or URL") from exc
    try:
        if data.get("type") == "FeatureCollection":
            items = list(pystac.ItemCollection.from_dict(data, preserve_dict=False))
            for item, raw in zip(items, data["features"], strict=True):
                _set_root_href(item, raw, source)
        else:
            items = [pystac.Item.from_dict(data)]
            _set_root_href(items[0], data, source)
    except Exception as exc:
        raise StacError(f"{source} is not a STAC Item or ItemCollection ({type(exc).__name__}: {exc})") from exc
    if not items:
        raise StacError(f"{source} holds no STAC items; search with `landsight stac search` first")
    return items


def _set_root_href(item: pystac.Item, raw: dict[str, Any], source: str) -> None:
    """Give `item` the href it was read from, so relative asset hrefs resolve against it."""
    self_link = next((link["href"] for link in raw.get("links", []) if link.get("rel") == "self"), None)
    absolute = self_link is not None and ("://" in self_link or Path(self_link).is_absolute())
    item.set_self_href(self_link if absolute else source)
