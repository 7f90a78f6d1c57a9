"""Every error the service answers is JSON with the right status code, never a traceback.

The body carries both TEI's fields (``error``, ``error_type``) and Cohere's (``message``), so either
kind of client shows the reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from winnow.errors import WinnowError


class ServeError(WinnowError):
    """An error answered with ``status``; ``kind`` names it for clients and metrics."""

    def __init__(
        self, status: int, message: str, kind: str = "validation", headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.headers = dict(headers or {})


def error_body(message: str, kind: str) -> dict[str, str]:
    return {"error": message, "error_type": kind, "message": message}


async def send_json_error(
    send, status: int, message: str, kind: str, headers: Mapping[str, str] = ()
) -> None:
    """Answer a raw ASGI request with a JSON error (for middleware, which runs outside FastAPI)."""
    body = json.dumps(error_body(message, kind)).encode()
    raw_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in dict(headers).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})
