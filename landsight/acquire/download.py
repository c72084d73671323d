"""Download a cover from an XYZ or WMS source into a folder of georeferenced tiles, resumably, with a JSON report.

Tiles already on disk are skipped, so a second run fetches only what is missing. The first missing tile is fetched
before anything is written: a server that cannot be reached stops the run with nothing written. Failures go to
`download-report.json` (tile, URL without secrets, reason, attempts) and never land as tiles.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from landsight import __version__
from landsight.acquire.cover import Cell, cell_id
from landsight.acquire.errors import SourceError
from landsight.acquire.fetch import Fault, RateLimiter, RetryPolicy, get_image
from landsight.acquire.sources import Source, redact
from landsight.acquire.tilefiles import save_tile, tile_path
from landsight.outputs import output_folder
from landsight.report.files import write_report as write_report_file
from landsight.report.schema import ReportHeader, with_header

log = logging.getLogger(__name__)

REPORT_NAME = "download-report.json"
_UNREACHABLE = ("connection", "timeout")


@dataclasses.dataclass(frozen=True)
class DownloadSettings:
    """How to fetch: `concurrency` requests in flight, at most `rate` request starts per second (None: no limit),
    `timeout` seconds per request, the retry `policy`, and `fmt` (tif, png or jpeg) of the stored tiles."""

    fmt: str = "tif"
    concurrency: int = 8
    rate: float | None = None
    timeout: float = 30.0
    policy: RetryPolicy = dataclasses.field(default_factory=RetryPolicy)


@dataclasses.dataclass
class DownloadResult:
    """What a run did; `failed` and `faults` hold dicts as written to the report."""

    folder: Path
    requested: int
    skipped: int = 0
    downloaded: int = 0
    requests: int = 0
    failed: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    faults: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def report_path(self) -> Path:
        """Where the JSON report lies."""
        return self.folder / REPORT_NAME


def download(source: Source, cells: Sequence[Cell], folder: str | Path, settings: DownloadSettings,
             progress: Callable[[int], None] | None = None) -> DownloadResult:
    """Fetch every cell of `cells` not yet stored under `folder`; `progress(n)` hears of n more tiles done."""
    return asyncio.run(_download(source, list(cells), Path(folder), settings, progress or (lambda n: None)))


async def _download(source: Source, cells: list[Cell], folder: Path, settings: DownloadSettings,
                    progress: Callable[[int], None]) -> DownloadResult:
    for cell in cells[:1]:
        source.url(cell)  # an XYZ source refuses a grid cover before anything happens
    result = DownloadResult(folder, len(cells))
    missing = [c for c in cells if not tile_path(folder, c, settings.fmt).is_file()]
    result.skipped = len(cells) - len(missing)
    progress(result.skipped)
    start = time.monotonic()
    limiter = RateLimiter(settings.rate)
    limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
    headers = {"User-Agent": f"landsight/{__version__}"}
    async with httpx.AsyncClient(timeout=settings.timeout, limits=limits, headers=headers,
                                 follow_redirects=True) as client:
        fetch = _Fetcher(client, source, folder, settings, limiter, result, progress)
        if missing:
            first_ok = await fetch.one(missing[0], probe=True)
            output_folder(folder)
            if first_ok is not None:
                fetch.store(missing[0], first_ok)
            semaphore = asyncio.Semaphore(settings.concurrency)

            async def bounded(cell: Cell) -> None:
                async with semaphore:
                    image = await fetch.one(cell)
                    if image is not None:
                        fetch.store(cell, image)

            await asyncio.gather(*(bounded(c) for c in missing[1:]))
        else:
            output_folder(folder)
    result.elapsed_s = time.monotonic() - start
    write_report(result, source, settings)
    return result


class _Fetcher:
    """Fetches one cell with retries and records its faults and failures in `result`."""

    def __init__(self, client: httpx.AsyncClient, source: Source, folder: Path, settings: DownloadSettings,
                 limiter: RateLimiter, result: DownloadResult, progress: Callable[[int], None]) -> None:
        self.client, self.source, self.folder, self.settings = client, source, folder, settings
        self.limiter, self.result, self.progress = limiter, result, progress

    async def one(self, cell: Cell, probe: bool = False) -> Any:
        url, tile = self.source.url(cell), cell_id(cell)

        def on_fault(fault: Fault, attempt: int) -> None:
            self._record_fault(tile, fault, attempt)

        attempt = 0
        try:
            async for attempt_state in self.settings.policy.retrying(on_fault):
                with attempt_state:
                    attempt = attempt_state.retry_state.attempt_number
                    self.result.requests += 1
                    return await get_image(self.client, url, self.source.size(cell), self.limiter)
        except Fault as fault:
            self._record_fault(tile, fault, attempt)
            if probe and fault.kind in _UNREACHABLE:
                raise SourceError(f"cannot reach {redact(url)}: {fault.reason} after {attempt} attempt(s); check "
                                  "the URL and that the server is running, then run again") from fault
            self.result.failed.append({"tile": tile, "url": redact(url), "kind": fault.kind, "reason": fault.reason,
                                       "attempts": attempt})
            log.debug("tile %s failed: %s", tile, fault.reason)
            self.progress(1)
        return None

    def _record_fault(self, tile: str, fault: Fault, attempt: int) -> None:
        self.result.faults.append({"tile": tile, "kind": fault.kind, "reason": fault.reason, "attempt": attempt})

    def store(self, cell: Cell, image: Any) -> None:
        save_tile(tile_path(self.folder, cell, self.settings.fmt), cell, self.settings.fmt, image.body, image.pixels,
                  image.format)
        self.result.downloaded += 1
        self.progress(1)


@dataclasses.dataclass(frozen=True)
class DownloadReport:
    """`download-report.json`: what a run fetched, skipped and failed, and how it was paced."""

    source: str
    format: str
    requested: int
    skipped_complete: int
    downloaded: int
    failed_count: int
    requests: int
    elapsed_s: float
    request_rate: float | None
    rate_limit: float | None
    concurrency: int
    attempts_max: int
    failed: list[dict[str, Any]]
    faults: list[dict[str, Any]]
    header: ReportHeader = dataclasses.field(default_factory=lambda: ReportHeader.new("download"))

    @classmethod
    def of(cls, result: DownloadResult, source: Source, settings: DownloadSettings) -> DownloadReport:
        """The report of a finished run (failures by tile, faults by tile and attempt)."""
        return cls(
            source=source.describe(), format=settings.fmt, requested=result.requested,
            skipped_complete=result.skipped, downloaded=result.downloaded, failed_count=len(result.failed),
            requests=result.requests, elapsed_s=round(result.elapsed_s, 3),
            request_rate=round(result.requests / result.elapsed_s, 3) if result.elapsed_s else None,
            rate_limit=settings.rate, concurrency=settings.concurrency, attempts_max=settings.policy.attempts,
            failed=sorted(result.failed, key=lambda r: r["tile"]),
            faults=sorted(result.faults, key=lambda r: (r["tile"], r["attempt"])),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the header (schema "landsight-download"), then the fields."""
        data = dataclasses.asdict(self)
        del data["header"]
        return with_header(self.header, data)


def write_report(result: DownloadResult, source: Source, settings: DownloadSettings) -> None:
    """Write the run's JSON report into its folder (replacing the previous run's)."""
    write_report_file(result.report_path, DownloadReport.of(result, source, settings))
