"""Remote imagery from a STAC item: the model's bands picked by name from the assets' `eo:bands`, cut to an area and
put on one grid in a small VRT that reads only the windows it needs from the COGs over HTTP (GDAL /vsicurl/).

Assets of different resolutions (10 m and 20 m Sentinel-2 bands) are resampled onto the finest one's grid by the
VRT as it is read; nothing is downloaded whole. GDAL's remote-read settings live in `remote_reads`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import os
import stat
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pystac
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.errors import RasterioError

from landsight.acquire.area import Area
from landsight.acquire.errors import StacError
from landsight.acquire.stac import load_items
from landsight.outputs import atomic_path
from landsight.paths import safe_name

log = logging.getLogger(__name__)

GDAL_REMOTE = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",  # no directory listing (no .aux.xml/.ovr probes) on open
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",  # one request for neighbouring blocks
    "GDAL_HTTP_MULTIPLEX": "YES",                 # HTTP/2 multiplexing where the server offers it
    "GDAL_HTTP_VERSION": "2",
    "GDAL_HTTP_MAX_RETRY": "3",                   # 429/5xx/connection errors retried ...
    "GDAL_HTTP_RETRY_DELAY": "0.5",               # ... with growing delays from 0.5 s
    "GDAL_HTTP_TIMEOUT": "60",
    "CPL_VSIL_CURL_CACHE_SIZE": str(64 * 2**20),  # bounded block cache shared by /vsicurl/ files
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(16 * 2**20),
    "GDAL_INGESTED_BYTES_AT_OPEN": "16384",       # the COG header (IFDs) in the first request
    "CPL_VSIL_CURL_CHUNK_SIZE": "8192",           # read granularity: small blocks are not over-read by much
}
"""GDAL settings for window reads over HTTP (see titiler's performance-tuning notes)."""


@contextlib.contextmanager
def remote_reads() -> Iterator[None]:
    """GDAL configured for fast, bounded, retried window reads over HTTP within the block."""
    with rasterio.Env(**GDAL_REMOTE):
        yield


@dataclasses.dataclass(frozen=True)
class BandSource:
    """One model band: `name`, the GDAL path of the asset holding it, its 1-based band number there, and the
    `scale` and `offset` that turn its values into physical units (STAC `raster:bands`)."""

    name: str
    path: str
    band: int
    scale: float = 1.0
    offset: float = 0.0


def gdal_path(href: str) -> str:
    """A path GDAL opens: /vsicurl/ for http(s) hrefs, the plain path for files."""
    if href.startswith(("http://", "https://")):
        return "/vsicurl/" + href
    return href[len("file://"):] if href.startswith("file://") else href


def asset_bands(asset: pystac.Asset) -> list[dict[str, Any]]:
    """The band descriptions of an asset: `eo:bands` (STAC 1.0) or `bands` (STAC 1.1), else []."""
    bands = asset.extra_fields.get("eo:bands") or asset.extra_fields.get("bands") or []
    return [b for b in bands if isinstance(b, dict)]


def raster_scaling(asset: pystac.Asset, number: int) -> tuple[float, float]:
    """(scale, offset) of band `number` (1-based) of an asset: its `raster:bands` entry (STAC 1.0 raster extension)
    or its `bands` entry's `raster:scale`/`raster:offset` (STAC 1.1); (1, 0) when absent."""
    for key, prefix in (("raster:bands", ""), ("bands", "raster:")):
        entries = asset.extra_fields.get(key)
        if isinstance(entries, list) and len(entries) >= number and isinstance(entries[number - 1], dict):
            entry = entries[number - 1]
            if f"{prefix}scale" in entry or f"{prefix}offset" in entry:
                return float(entry.get(f"{prefix}scale", 1.0)), float(entry.get(f"{prefix}offset", 0.0))
    return 1.0, 0.0


def select_bands(item: pystac.Item, wanted: Sequence[str]) -> list[BandSource]:
    """The asset band for each of `wanted` (matched to eo:bands `name` or `common_name`, case-insensitive). An item
    read over HTTP may only name http(s) assets (never a local file or another GDAL path)."""
    offered: dict[str, BandSource] = {}
    remote = (item.get_self_href() or "").startswith(("http://", "https://"))
    for asset in item.assets.values():
        href = asset.get_absolute_href() or asset.href
        if remote and not href.startswith(("http://", "https://")) and asset_bands(asset):
            raise StacError(f"STAC item {item.id}, read over HTTP, points to {href!r}, which is not an http(s) URL: "
                            "a remote item may only name remote assets; download the item and check its assets "
                            "before reading local files through it")
        for number, band in enumerate(asset_bands(asset), start=1):
            for key in ("name", "common_name", "eo:common_name"):
                if band.get(key):
                    offered.setdefault(str(band[key]).lower(), BandSource(str(band[key]), gdal_path(href), number,
                                                                          *raster_scaling(asset, number)))
    missing = [w for w in wanted if w.lower() not in offered]
    if missing:
        names = sorted({b.name for b in offered.values()}) or ["none: its assets carry no eo:bands"]
        raise StacError(f"STAC item {item.id} lacks band(s) {missing}: the model needs {list(wanted)}, the item has "
                        f"{names}; choose an item with these bands or pass `stac_bands` with item band names in the "
                        "model's order")
    return [dataclasses.replace(offered[w.lower()], name=w) for w in wanted]


@dataclasses.dataclass(frozen=True)
class _Grid:
    crs: CRS
    transform: Affine
    width: int
    height: int
    dtype: str
    nodata: float | None


def _read_header(path: str) -> _Grid:
    try:
        with rasterio.open(path) as src:
            return _Grid(src.crs, src.transform, src.width, src.height, src.dtypes[0], src.nodata)
    except RasterioError as exc:
        raise StacError(f"cannot open asset {path} ({exc}); check that the server is running and allows range "
                        "requests") from exc


def build_vrt(bands: Sequence[BandSource], area: Area | None, output: Path, resampling: str = "bilinear") -> Path:
    """Write a VRT of `bands` on the finest asset's grid, cut to `area` (all of it without one); each band carries
    its asset's scale and offset (`<Scale>`, `<Offset>`), which readers apply as the file's own metadata."""
    headers = {b.path: _read_header(b.path) for b in bands}
    crs = {str(h.crs) for h in headers.values()}
    if len(crs) != 1:
        raise StacError(f"the item's assets lie in different CRSs {sorted(crs)}; landsight reads one CRS per item")
    fine = min(headers.values(), key=lambda h: abs(h.transform.a))
    col0, row0, cols, rows = 0, 0, fine.width, fine.height
    if area is not None:
        col0, row0, cols, rows = _window(area, fine)
    transform = fine.transform @ Affine.translation(col0, row0)
    dtype = _gdal_type(fine.dtype)
    lines = [f'<VRTDataset rasterXSize="{cols}" rasterYSize="{rows}">',
             f"  <SRS>{escape(fine.crs.to_wkt())}</SRS>",
             "  <GeoTransform>" + ", ".join(repr(v) for v in transform.to_gdal()) + "</GeoTransform>"]
    for i, band in enumerate(bands, start=1):
        src = headers[band.path]
        x0 = (transform.c - src.transform.c) / src.transform.a
        y0 = (transform.f - src.transform.f) / src.transform.e
        scale_x, scale_y = transform.a / src.transform.a, transform.e / src.transform.e
        nodata = f"    <NoDataValue>{src.nodata!r}</NoDataValue>\n" if src.nodata is not None else ""
        scaling = f"    <Offset>{band.offset!r}</Offset>\n    <Scale>{band.scale!r}</Scale>\n"
        lines.append(f'  <VRTRasterBand dataType="{dtype}" band="{i}">\n    <Description>{escape(band.name)}'
                     f"</Description>\n{nodata}{scaling}"
                     f'    <ComplexSource resampling="{resampling}">\n'
                     f'      <SourceFilename relativeToVRT="0">{escape(band.path)}</SourceFilename>\n'
                     f"      <SourceBand>{band.band}</SourceBand>\n"
                     f'      <SrcRect xOff="{x0!r}" yOff="{y0!r}" xSize="{cols * scale_x!r}" '
                     f'ySize="{rows * scale_y!r}"/>\n'
                     f'      <DstRect xOff="0" yOff="0" xSize="{cols}" ySize="{rows}"/>\n'
                     f"    </ComplexSource>\n  </VRTRasterBand>")
    lines.append("</VRTDataset>\n")
    output.write_text("\n".join(lines))
    return output


def _window(area: Area, grid: _Grid) -> tuple[int, int, int, int]:
    """(col, row, cols, rows) of `grid` covering `area`, snapped outwards to whole pixels and clipped to the grid."""
    left, bottom, right, top = area.in_crs(grid.crs).bounds
    inverse = ~grid.transform
    c0, r0 = inverse @ (left, top)
    c1, r1 = inverse @ (right, bottom)
    col0, row0 = max(0, math.floor(min(c0, c1))), max(0, math.floor(min(r0, r1)))
    col1, row1 = min(grid.width, math.ceil(max(c0, c1))), min(grid.height, math.ceil(max(r0, r1)))
    if col1 <= col0 or row1 <= row0:
        raise StacError(f"{area.source} does not overlap the item's imagery; choose an item that covers it")
    return col0, row0, col1 - col0, row1 - row0


def _gdal_type(dtype: str) -> str:
    names = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
             "int32": "Int32", "float32": "Float32", "float64": "Float64"}
    return names.get(dtype, "Float32")


@contextlib.contextmanager
def stac_image(source: str, wanted: Sequence[str], area: Area | None, resampling: str = "bilinear",
               labels: Sequence[str] | None = None) -> Iterator[Path]:
    """A VRT of the first item of `source` (a STAC Item or ItemCollection file or URL) with bands `wanted`, cut to
    `area`, its bands described as `labels` (default `wanted`); GDAL's remote-read settings hold within the block.

    The VRT's path depends only on what it holds (a temporary folder named by a digest), so a command run again on
    the same item, bands and area sees the same image path (training resumes).
    """
    items = load_items(source)
    if len(items) > 1:
        log.warning("%s holds %d items; reading the first, %s", source, len(items), items[0].id)
    with remote_reads():
        yield _item_vrt(source, items[0], wanted, area, resampling, labels)


@contextlib.contextmanager
def stac_images(source: str, wanted: Sequence[str], area: Area | None, resampling: str = "bilinear",
                labels: Sequence[str] | None = None) -> Iterator[list[Path]]:
    """`stac_image` for every item of `source`: one VRT each, named by the item id."""
    items = load_items(source)
    ids = [item.id for item in items]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise StacError(f"{source} holds several items with the id(s) {repeated}; their outputs would have the same "
                        "name: keep one item per id")
    with remote_reads():
        yield [_item_vrt(source, item, wanted, area, resampling, labels) for item in items]


def _item_vrt(source: str, item: pystac.Item, wanted: Sequence[str], area: Area | None, resampling: str,
              labels: Sequence[str] | None) -> Path:
    bands = select_bands(item, wanted)
    if labels is not None:
        bands = [dataclasses.replace(b, name=label) for b, label in zip(bands, labels, strict=True)]
    key = json.dumps([source, item.id, [dataclasses.astuple(b) for b in bands], area.geometry.wkt if area else None,
                      resampling])
    folder = _private_folder(f"landsight-stac-{os.getuid()}-{hashlib.sha256(key.encode()).hexdigest()[:16]}")
    vrt = folder / f"{safe_name(item.id)}.vrt"
    with atomic_path(vrt, overwrite=True) as tmp:
        build_vrt(bands, area, tmp, resampling)
    return vrt


def _private_folder(name: str) -> Path:
    """A folder of this user's in the temporary directory (mode 0700); refuses one that another user or a link holds,
    since whoever controls it could swap the VRTs read from it."""
    folder = Path(tempfile.gettempdir()) / name
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise StacError(f"{folder} is not a private folder of this user (a link, another owner or open "
                        "permissions); remove it and run again")
    return folder
