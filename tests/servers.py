"""A tile, WMS and static-file server on 127.0.0.1 for tests and the README's offline "map an area" flow.

It renders the shipped Sentinel-2 crop (tests/data/sentinel2-coast/s2-crop.tif, bands 3-2-1 as RGB) as XYZ tiles
(`/xyz/{z}/{x}/{y}.png`) and WMS GetMap images (`/wms?...`, versions 1.1.1 and 1.3.0), and serves files under a
root folder (`/files/...`) with HTTP Range support (single and multiple ranges), as GDAL's /vsicurl/ needs, and a
minimal STAC API over the catalogue in that folder (`/api`, `/api/search`).

Fault injection: `server.faults[key]` is a list of faults applied, one per request, to the next requests whose
path and query equal `key`: slow, timeout, reset, 500, 503, 429, truncated (the connection closes mid-body), cut
(half an image, sent as if whole), xml, html, content-type, wrong-size, empty. Every request is logged in
`server.log` (arrival time, method, target, range, status, bytes, fault).

Run standalone: `python -m tests.servers --port 8765 --root DIR [--catalog]` (Ctrl-C stops it; --seconds bounds its
life; --catalog first writes the test STAC catalogue into DIR).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import re
import socket
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import mercantile
import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.errors import NotGeoreferencedWarning
from rasterio.io import MemoryFile
from rasterio.transform import from_bounds
from rasterio.warp import Resampling, calculate_default_transform, reproject

S2 = Path(__file__).parent / "data" / "sentinel2-coast" / "s2-crop.tif"
HOLD_S = 6.0
"""How long a `timeout` fault holds the connection before closing it (clients use a shorter --timeout)."""
SLOW_S = 0.2
_MIME = {"image/png": "PNG", "image/jpeg": "JPEG", "image/tiff": "GTiff", "image/geotiff": "GTiff"}


@dataclasses.dataclass
class Logged:
    """One request as the server saw it."""

    at: float
    method: str
    target: str
    range: str | None
    status: int
    sent: int
    fault: str | None


class Renderer:
    """RGB uint8 renderings of the shipped Sentinel-2 crop for any CRS, bounds and size."""

    def __init__(self, path: Path = S2) -> None:
        with rasterio.open(path) as src:
            data = src.read([3, 2, 1]).astype(np.float32)
            self.crs, self.transform = src.crs, src.transform
        self.rgb = np.clip(data / 1500.0 * 255.0, 1, 255).astype(np.uint8)  # 0 stays free for "outside"
        mercator = CRS.from_epsg(3857)
        bounds = rasterio.transform.array_bounds(self.rgb.shape[1], self.rgb.shape[2], self.transform)
        self.merc_transform, width, height = calculate_default_transform(
            self.crs, mercator, self.rgb.shape[2], self.rgb.shape[1], *bounds)
        self.merc = np.zeros((3, height, width), dtype=np.uint8)
        reproject(self.rgb, self.merc, src_transform=self.transform, src_crs=self.crs, dst_crs=mercator,
                  dst_transform=self.merc_transform, resampling=Resampling.nearest, src_nodata=0, dst_nodata=0)

    def pixels(self, crs: CRS, bounds: tuple[float, float, float, float], width: int, height: int) -> np.ndarray:
        """(3, height, width) uint8 image of `bounds` in `crs` (0 outside the source)."""
        out = np.zeros((3, height, width), dtype=np.uint8)
        reproject(self.rgb, out, src_transform=self.transform, src_crs=self.crs, dst_crs=crs,
                  dst_transform=from_bounds(*bounds, width, height), resampling=Resampling.nearest, src_nodata=0,
                  dst_nodata=0)
        return out

    def encode(self, pixels: np.ndarray, driver: str, crs: CRS | None = None,
               bounds: tuple[float, float, float, float] | None = None) -> bytes:
        """`pixels` as a PNG, JPEG or (georeferenced when `crs` is given) GeoTIFF file."""
        profile = {"driver": driver, "width": pixels.shape[2], "height": pixels.shape[1], "count": pixels.shape[0],
                   "dtype": "uint8", **({"ZLEVEL": 1} if driver == "PNG" else {})}
        if driver == "GTiff" and crs is not None and bounds is not None:
            profile.update(crs=crs, transform=from_bounds(*bounds, pixels.shape[2], pixels.shape[1]))
        with warnings.catch_warnings(), rasterio.Env(GDAL_PAM_ENABLED="NO"), MemoryFile() as memfile:
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with memfile.open(**profile) as dst:
                dst.write(pixels)
            return bytes(memfile.read())

    def xyz(self, z: int, x: int, y: int, size: int = 256) -> bytes:
        """The PNG of XYZ tile z/x/y, byte for byte as the server sends it (nearest pixel of a Web Mercator copy)."""
        b = mercantile.xy_bounds(x, y, z)
        step = (b.right - b.left) / size
        centres = (np.arange(size) + 0.5) * step
        t = self.merc_transform
        cols = np.floor((b.left + centres - t.c) / t.a).astype(np.int64)
        rows = np.floor((b.top - centres - t.f) / t.e).astype(np.int64)
        inside = ((rows >= 0) & (rows < self.merc.shape[1]))[:, None] & ((cols >= 0) & (cols < self.merc.shape[2]))
        pixels = self.merc[:, np.clip(rows, 0, self.merc.shape[1] - 1)][:, :, np.clip(cols, 0, self.merc.shape[2] - 1)]
        return self.encode(np.where(inside, pixels, 0).astype(np.uint8), "PNG")

    def wms(self, params: dict[str, str]) -> tuple[bytes, str] | str:
        """A GetMap answer (body, content type), or an error text for a ServiceException."""
        version = params.get("VERSION", "1.3.0")
        crs_text = params.get("CRS" if version == "1.3.0" else "SRS")
        if params.get("REQUEST") != "GetMap" or params.get("LAYERS") != "s2":
            return f"unknown request or layer {params.get('LAYERS')!r}"
        try:
            crs = CRS.from_user_input(crs_text)
            values = [float(v) for v in params["BBOX"].split(",")]
            width, height = int(params["WIDTH"]), int(params["HEIGHT"])
        except Exception as exc:
            return f"bad GetMap parameters: {exc}"
        if version == "1.3.0" and crs.is_geographic:
            values = [values[1], values[0], values[3], values[2]]
        fmt = params.get("FORMAT", "image/png")
        if fmt not in _MIME:
            return f"format {fmt} not offered"
        bounds = (values[0], values[1], values[2], values[3])
        return self.encode(self.pixels(crs, bounds, width, height), _MIME[fmt], crs, bounds), fmt


class TileServer(ThreadingHTTPServer):
    """The server; `faults`, `log` and `renderer` are shared with its handler threads."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path | None = None, port: int = 0) -> None:
        super().__init__(("127.0.0.1", port), _Handler)
        self.root = root
        self.renderer = Renderer()
        self.faults: dict[str, list[str]] = {}
        self.log: list[Logged] = []
        self.searches: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        """http://127.0.0.1:PORT"""
        return f"http://127.0.0.1:{self.server_address[1]}"

    def next_fault(self, key: str) -> str | None:
        """Pop the next fault planned for `key`."""
        with self.lock:
            planned = self.faults.get(key)
            return planned.pop(0) if planned else None

    def record(self, entry: Logged) -> None:
        with self.lock:
            self.log.append(entry)


@contextlib.contextmanager
def running(root: Path | None = None, seconds: float = 300.0) -> Iterator[TileServer]:
    """Serve on a free port of 127.0.0.1 in a thread for the block (stopped after `seconds` at the latest)."""
    server = TileServer(root)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    watchdog = threading.Timer(seconds, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield server
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TileServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    def do_POST(self) -> None:
        self._serve(head=False)

    def _serve(self, head: bool) -> None:
        entry = Logged(time.monotonic(), self.command, self.path, self.headers.get("Range"), 0, 0,
                       self.server.next_fault(self.path))
        self.server.record(entry)  # on arrival: a client that gave up still finds its request logged
        entry.status, entry.sent = self._answer(entry.fault, head)

    def _answer(self, fault: str | None, head: bool) -> tuple[int, int]:
        if fault in ("timeout", "reset"):
            if fault == "timeout":
                time.sleep(HOLD_S)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return 0, 0
        if fault == "slow":
            time.sleep(SLOW_S)
        if fault in ("500", "503", "429"):
            headers = {"Retry-After": "1"} if fault == "429" else {}
            return self._send(int(fault), b"busy\n", "text/plain", headers)
        if fault == "xml":
            return self._send(200, _exception_xml("internal rendering error"), "application/vnd.ogc.se_xml")
        if fault == "html":
            return self._send(200, b"<!DOCTYPE html><html><body><h1>Maintenance</h1></body></html>", "text/html")
        parts = urlsplit(self.path)
        try:
            body, ctype = self._route(parts.path, dict(parse_qsl(parts.query)), head)
        except _Missing as exc:
            return self._send(404, f"{exc}\n".encode(), "text/plain")
        if isinstance(body, int):  # a range answer was sent already
            return body, ctype  # type: ignore[return-value]
        if fault == "content-type":
            return self._send(200, body, "application/octet-stream")
        if fault == "wrong-size":
            return self._send(200, self.server.renderer.encode(np.ones((3, 100, 100), np.uint8), "PNG"), ctype)
        if fault == "empty":
            return self._send(200, b"", ctype)
        if fault == "truncated":
            return self._send(200, body, ctype, truncate=True)
        if fault == "cut":  # an image file cut in half, sent whole: Content-Length agrees with it
            return self._send(200, body[: len(body) // 2], ctype)
        return self._send(200, body, ctype, head=head)

    def _route(self, path: str, params: dict[str, str], head: bool) -> tuple[bytes | int, str | int]:
        match = re.fullmatch(r"/xyz/(\d+)/(\d+)/(\d+)\.png", path)
        if match:
            z, x, y = (int(v) for v in match.groups())
            return self.server.renderer.xyz(z, x, y), "image/png"
        if path == "/wms":
            answer = self.server.renderer.wms({k.upper(): v for k, v in params.items()})
            if isinstance(answer, str):
                return _exception_xml(answer), "application/vnd.ogc.se_xml"
            return answer
        if path.startswith("/api") and self.server.root is not None:
            return self._api(path, params)
        if path.startswith("/files/") and self.server.root is not None:
            return self._file(path[len("/files/"):], head)
        raise _Missing(f"no such resource {path}")

    def _api(self, path: str, params: dict[str, str]) -> tuple[bytes, str]:
        """A minimal STAC API over the catalogue under the root: landing page and item search (GET and POST)."""
        if path in ("/api", "/api/"):
            return json.dumps(stac_api_landing(self.server.url)).encode(), "application/json"
        if path != "/api/search":
            raise _Missing(f"no such resource {path}")
        if self.command == "POST":
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            query = json.loads(body or b"{}")
        else:
            query = {k: (v.split(",") if k in ("collections", "bbox") else v) for k, v in params.items()}
        items = stac_api_search(self.server.root, self.server.url, query)  # type: ignore[arg-type]
        self.server.searches.append(query)
        return json.dumps({"type": "FeatureCollection", "features": items, "links": []}).encode(), \
            "application/geo+json"

    def _file(self, relative: str, head: bool) -> tuple[bytes | int, str | int]:
        root = self.server.root.resolve()  # type: ignore[union-attr]
        target = (root / relative).resolve()
        if root not in target.parents or not target.is_file():
            raise _Missing(f"no such file {relative}")
        ctype = "application/json" if target.suffix == ".json" else "image/tiff"
        ranges = _parse_ranges(self.headers.get("Range"), target.stat().st_size)
        if ranges is None:
            return target.read_bytes(), ctype
        return self._send_ranges(target, ranges, ctype, head)

    def _send_ranges(self, target: Path, ranges: list[tuple[int, int]], ctype: str, head: bool) -> tuple[int, int]:
        size = target.stat().st_size
        with target.open("rb") as f:
            chunks = []
            for start, end in ranges:
                f.seek(start)
                chunks.append(f.read(end - start + 1))
        if len(ranges) == 1:
            start, end = ranges[0]
            return self._send(206, chunks[0], ctype, {"Content-Range": f"bytes {start}-{end}/{size}"}, head=head)
        boundary = "landsightrangeboundary"
        body = b""
        for (start, end), chunk in zip(ranges, chunks, strict=True):
            body += (f"--{boundary}\r\nContent-Type: {ctype}\r\nContent-Range: bytes {start}-{end}/{size}\r\n\r\n"
                     ).encode() + chunk + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        return self._send(206, body, f"multipart/byteranges; boundary={boundary}", head=head)

    def _send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None,
              truncate: bool = False, head: bool = False) -> tuple[int, int]:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if head:
            return status, 0
        payload = body[: len(body) // 2] if truncate else body
        try:
            self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        if truncate:
            self.close_connection = True
        return status, len(payload)


class _Missing(Exception):
    pass


def _parse_ranges(header: str | None, size: int) -> list[tuple[int, int]] | None:
    """[(first, last)] byte positions of a Range header, clipped to the file; None without one."""
    if not header or not header.startswith("bytes="):
        return None
    ranges = []
    for part in header[len("bytes="):].split(","):
        first, _, last = part.strip().partition("-")
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(size - 1, int(last) if last else size - 1)
        if start <= end:
            ranges.append((start, end))
    return ranges or None


def stac_api_landing(url: str) -> dict[str, Any]:
    """The landing page of the minimal STAC API at `url`/api."""
    return {"type": "Catalog", "id": "landsight-test-api", "stac_version": "1.0.0", "description": "test STAC API",
            "conformsTo": ["https://api.stacspec.org/v1.0.0/core", "https://api.stacspec.org/v1.0.0/item-search",
                           "https://api.stacspec.org/v1.0.0/item-search#query"],
            "links": [{"rel": "self", "href": f"{url}/api", "type": "application/json"},
                      {"rel": "root", "href": f"{url}/api", "type": "application/json"},
                      {"rel": "search", "href": f"{url}/api/search", "type": "application/geo+json", "method": "GET"},
                      {"rel": "search", "href": f"{url}/api/search", "type": "application/geo+json",
                       "method": "POST"}]}


def stac_api_search(root: Path, url: str, query: dict[str, Any]) -> list[dict[str, Any]]:
    """Items of the catalogue under `root` matching a STAC API search body (collections, bbox or intersects,
    datetime, query on eo:cloud_cover); asset hrefs made absolute URLs under `url`/files/."""
    import shapely

    area = (shapely.geometry.shape(query["intersects"]) if query.get("intersects") else
            shapely.box(*[float(v) for v in query["bbox"]]) if query.get("bbox") else None)
    start, _, end = str(query.get("datetime") or "../..").partition("/")
    cloud = (query.get("query") or {}).get("eo:cloud_cover", {})
    found = []
    for path in sorted(root.glob("*/*/*.json")):
        item = json.loads(path.read_text())
        if item.get("type") != "Feature" or (query.get("collections") and
                                             item.get("collection") not in query["collections"]):
            continue
        if area is not None and not shapely.geometry.shape(item["geometry"]).intersects(area):
            continue
        when = item["properties"]["datetime"][:10]
        if (start not in ("", "..") and when < start[:10]) or (end not in ("", "..") and when > end[:10]):
            continue
        if "lte" in cloud and item["properties"].get("eo:cloud_cover", 0) > cloud["lte"]:
            continue
        for asset in item["assets"].values():
            relative = (path.parent / asset["href"]).resolve().relative_to(root.resolve())
            asset["href"] = f"{url}/files/{relative.as_posix()}"
        item["links"] = []
        found.append(item)
    return found


def _exception_xml(message: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<ServiceExceptionReport version="1.3.0" '
            'xmlns="http://www.opengis.net/ogc">\n  <ServiceException code="NoApplicableCode">'
            f"{message}</ServiceException>\n</ServiceExceptionReport>\n").encode()


def main() -> None:
    """Serve until Ctrl-C or --seconds."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--root", type=Path, default=None, help="folder served under /files/")
    parser.add_argument("--seconds", type=float, default=3600.0, help="stop after this long")
    parser.add_argument("--catalog", action="store_true",
                        help="first write the test STAC catalogue of the Sentinel-2 crop's COGs into --root")
    args = parser.parse_args()
    if args.catalog:
        if args.root is None:
            parser.error("--catalog needs --root")
        from tests.acquire.stac_catalog import write_catalog

        write_catalog(args.root)
    server = TileServer(args.root, args.port)
    print(f"serving {server.url} (xyz: /xyz/{{z}}/{{x}}/{{y}}.png, wms: /wms, files: /files/)", flush=True)
    threading.Timer(args.seconds, server.shutdown).start()
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever(poll_interval=0.1)
    server.server_close()


if __name__ == "__main__":
    main()
