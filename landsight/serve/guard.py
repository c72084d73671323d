"""ASGI middleware around every request: body-size limit before the body is read, and request metrics."""

from __future__ import annotations

import json
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from landsight.serve.errors import PayloadTooLarge
from landsight.serve.metrics import Metrics


class Guard:
    """Refuses bodies over `max_body_bytes` (by Content-Length at once, else while they stream in) and records
    each request's route, status and latency."""

    def __init__(self, app: ASGIApp, max_body_bytes: int, metrics: Metrics) -> None:
        self.app, self.max_body_bytes, self.metrics = app, max_body_bytes, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            length = _content_length(scope)
            if length is not None and length > self.max_body_bytes:
                await _refuse(send_status, self._too_large(f"{length:,} bytes"))
                return
            await self.app(scope, self._counting(receive), send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.observe(route, scope["method"], status, time.perf_counter() - start)

    def _counting(self, receive: Receive) -> Receive:
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body_bytes:
                raise self._too_large(f"more than {self.max_body_bytes:,} bytes")
            return message

        return counted

    def _too_large(self, size: str) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is {size}; this server accepts at most {self.max_body_bytes:,} "
                               "bytes: send a smaller image")


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, error: PayloadTooLarge) -> None:
    body = json.dumps(error_body(error)).encode()
    await send({"type": "http.response.start", "status": error.status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


def error_body(error: Exception, status: int | None = None) -> dict[str, Any]:
    """The JSON body of every error answer: what went wrong and what to do."""
    return {"error": type(error).__name__, "status": status or getattr(error, "status", 500), "detail": str(error)}
