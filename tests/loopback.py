"""Loopback HTTP servers for tests that stand in for remote services (the hub, hosted rerank APIs)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(handler: type[BaseHTTPRequestHandler]) -> tuple[ThreadingHTTPServer, str]:
    """Start ``handler`` on a free 127.0.0.1 port in a daemon thread; returns the server and its URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


def send_json(
    handler: BaseHTTPRequestHandler, status: int, payload, headers: dict[str, str] | None = None
) -> None:
    """Answer with ``payload`` as JSON (headers only for HEAD)."""
    send_text(handler, status, json.dumps(payload), headers)


def send_text(
    handler: BaseHTTPRequestHandler, status: int, text: str, headers: dict[str, str] | None = None
) -> None:
    """Answer with ``text`` as the body, declared JSON whether it is or not (headers only for HEAD)."""
    data = text.encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(data)
