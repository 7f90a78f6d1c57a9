"""Admission control, as TEI and Cohere do it: a full service says 429 at once instead of hanging a
socket; a body over the size limit gets 413 before it is read; a body that trickles in gets 408;
a request past its deadline gets 503 (the handlers enforce it, and its work is dropped).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection, Mapping

from winnow.serve.errors import send_json_error
from winnow.serve.metrics import ServeMetrics

# Probes and scrapes are never limited: a saturated service must still say so.
UNLIMITED_PATHS = frozenset({"/health", "/metrics"})
RETRY_AFTER_SECONDS = "1"


class _BodyTooLarge(Exception):
    pass


class AdmissionMiddleware:
    """Counts requests in flight, buffers bodies under a size and time limit, and records metrics.

    Each admitted request gets ``scope["state"]["deadline"]``: the event-loop time by which it must
    be answered (``request_timeout`` seconds after arrival, body upload included).
    """

    def __init__(
        self,
        app,
        metrics: ServeMetrics,
        max_concurrent_requests: int,
        max_body_bytes: int,
        request_timeout: float,
        routes: Collection[str],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.max_concurrent = max_concurrent_requests
        self.max_body_bytes = max_body_bytes
        self.request_timeout = request_timeout
        self.routes = frozenset(routes)
        self.in_flight = 0
        self.draining = False

    def _route(self, path: str) -> str:
        return path if path in self.routes else "other"

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = self._route(scope["path"])
        started = time.perf_counter()
        status = {"code": 500}

        async def send_recording(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._admit(scope, receive, send_recording, route)
        finally:
            self.metrics.requests.labels(route, str(status["code"])).inc()
            self.metrics.request_seconds.labels(route).observe(time.perf_counter() - started)

    async def _admit(self, scope, receive, send, route: str) -> None:
        if scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.draining:
            await self._reject(
                send, "draining", 503, "the service is shutting down", "unavailable", {"retry-after": "5"}
            )
            return
        if self.in_flight >= self.max_concurrent:
            await self._reject(
                send,
                "concurrency",
                429,
                f"too many concurrent requests (limit {self.max_concurrent}); retry shortly",
                "overloaded",
                {"retry-after": RETRY_AFTER_SECONDS},
            )
            return
        self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            await self._handle(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()

    async def _handle(self, scope, receive, send) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.request_timeout
        scope.setdefault("state", {})["deadline"] = deadline
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await self._too_large(send)
            return
        try:
            async with asyncio.timeout_at(deadline):
                body = await self._read_body(receive)
        except _BodyTooLarge:
            await self._too_large(send)
            return
        except TimeoutError:
            await self._reject(
                send,
                "slow_body",
                408,
                f"the request body did not arrive within {self.request_timeout:g} s",
                "timeout",
            )
            return
        if body is None:  # the client left before sending its body
            return
        delivered = False

        async def replay():
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _read_body(self, receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise _BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, send) -> None:
        await self._reject(
            send,
            "body_size",
            413,
            f"request body is larger than the limit of {self.max_body_bytes} bytes",
            "payload_too_large",
        )

    async def _reject(
        self, send, reason: str, status: int, message: str, error_type: str, headers: Mapping[str, str] = ()
    ) -> None:
        """Count the rejection under ``reason`` and answer with a JSON error, before the app sees it."""
        self.metrics.rejected.labels(reason).inc()
        await send_json_error(send, status, message, error_type, headers)
