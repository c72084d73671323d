"""Headless Debian Chromium for page tests, driven by Playwright (no browser download): offline flags, console errors
and every requested URL recorded."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--no-first-run"]


def playwright_or_skip() -> Any:
    """`playwright.sync_api.sync_playwright`, or skip the test with the reason."""
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    module = pytest.importorskip("playwright.sync_api", reason="the playwright Python driver is not installed")
    return module.sync_playwright


@contextlib.contextmanager
def browser_page(sync_playwright: Any, timeout_ms: int = 10_000, launch_timeout_ms: int = 20_000,
                 **page_options: Any) -> Iterator[tuple[Any, list[str], list[str]]]:
    """(page, console errors, requested URLs) of a new Chromium page; the browser closes on exit."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, timeout=launch_timeout_ms)
        try:
            page = browser.new_page(**page_options)
            page.set_default_timeout(timeout_ms)
            errors: list[str] = []
            requests: list[str] = []
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            yield page, errors, requests
        finally:
            browser.close()
