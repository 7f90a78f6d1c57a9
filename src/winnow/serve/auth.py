"""Bearer-key authentication on every endpoint but /health (which load balancers probe without a key)."""

from __future__ import annotations

import hmac

from winnow.serve.errors import send_json_error
from winnow.serve.metrics import ServeMetrics

OPEN_PATHS = frozenset({"/health"})


class BearerAuthMiddleware:
    """Rejects a request without ``Authorization: Bearer <key>`` with 401, before its body is read.

    The key is compared in constant time (``hmac.compare_digest``), so response timing says nothing
    about how much of a guessed key was right.
    """

    def __init__(self, app, api_key: str, metrics: ServeMetrics) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode()
        self.metrics = metrics

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(b"authorization", b"")
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        self.metrics.rejected.labels("unauthorized").inc()
        message = "missing API key: send 'Authorization: Bearer <key>'" if not given else "wrong API key"
        await send_json_error(send, 401, message, "unauthorized", {"www-authenticate": "Bearer"})
