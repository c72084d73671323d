"""Long work announces itself: the plan (raster size, pixels, windows) before it starts, the expected time once the
rate is measured. Messages go to the library logger at INFO (the CLI shows INFO), large plans warn."""

from __future__ import annotations

import logging
from time import monotonic

log = logging.getLogger(__name__)

LARGE_PLAN_WINDOWS = 1000
"""Plans with more windows than this are announced with a warning."""


def describe_size(width: int, height: int) -> str:
    """"W x H px (N Mpx)" with thousands separators.

    >>> describe_size(100_000, 100_000)
    '100,000 x 100,000 px (10,000.0 Mpx)'
    """
    return f"{width:,} x {height:,} px ({width * height / 1e6:,.1f} Mpx)"


def format_duration(seconds: float) -> str:
    """A rough duration for people: seconds, minutes or hours.

    >>> format_duration(42), format_duration(300), format_duration(5400), format_duration(9000)
    ('42 s', '5 min', '90 min', '2.5 h')
    """
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def warn_if_large(task: str, windows: int) -> None:
    """Warn that `windows` is a long job (when it is), and that its expected time follows once measured."""
    if windows > LARGE_PLAN_WINDOWS:
        log.warning("%s: %s windows is a large job; the expected time is logged once the first windows are done "
                    "(interrupt with Ctrl-C)", task, f"{windows:,}")


class Eta:
    """Logs once, after at least `min_seconds`, the measured rate of a job of `total` steps and the time it still
    needs (rough: the first steps include warm-up)."""

    def __init__(self, task: str, total: int, unit: str = "windows", min_seconds: float = 5.0) -> None:
        self.task, self.total, self.unit, self.min_seconds = task, total, unit, min_seconds
        self.done = 0
        self.started = monotonic()
        self.logged = False

    def advance(self, steps: int) -> None:
        """Count `steps` more done; log the estimate the first time enough time has passed."""
        self.done += steps
        elapsed = monotonic() - self.started
        if self.logged or elapsed < self.min_seconds or not 0 < self.done < self.total:
            return
        self.logged = True
        left = (self.total - self.done) * elapsed / self.done
        log.info("%s: %s of %s %s in %s (%.2f/s); about %s left", self.task, f"{self.done:,}", f"{self.total:,}",
                 self.unit, format_duration(elapsed), self.done / elapsed, format_duration(left))
