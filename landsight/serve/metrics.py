"""Prometheus metrics of one app (its own registry, so several apps can live in one process, as in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""Media type of the Prometheus text exposition format."""


class Metrics:
    """Requests by route and status, latency histogram, forward-pass batch sizes, queue depth, tile cache hits."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("landsight_requests", "HTTP requests answered", ["route", "method", "status"],
                                registry=self.registry)
        self.latency = Histogram("landsight_request_seconds", "Time to answer a request", ["route"],
                                 buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                                 registry=self.registry)
        self.batch_size = Histogram("landsight_batch_size", "Windows per forward pass", ["model"],
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=self.registry)
        self.queue_depth = Gauge("landsight_queue_depth", "Windows waiting for a forward pass", ["model"],
                                 registry=self.registry)
        self.tile_cache = Counter("landsight_tile_cache", "Tile cache lookups", ["result"], registry=self.registry)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one answered request."""
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def render(self) -> bytes:
        """The text exposition of every metric."""
        return generate_latest(self.registry)
