"""Run the service on uvicorn, with a start-up line and a graceful shutdown.

On SIGINT/SIGTERM new requests get 503 at once, requests in flight finish (up to
``graceful_timeout`` seconds), then the workers stop and the index closes. After a SIGTERM the
process exits with status 0: the shutdown it asked for succeeded.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from winnow.serve.app import Service, build_asgi
from winnow.serve.limits import AdmissionMiddleware
from winnow.serve.settings import ServeSettings

logger = logging.getLogger("winnow.serve")


class DrainingServer(uvicorn.Server):
    """uvicorn, but requests arriving during shutdown are answered 503 instead of left unanswered."""

    def __init__(self, config: uvicorn.Config, admission: AdmissionMiddleware) -> None:
        super().__init__(config)
        self.admission = admission

    async def shutdown(self, sockets: Any = None) -> None:
        self.admission.draining = True
        await super().shutdown(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Shut down as uvicorn does, but do not re-raise SIGTERM afterwards (uvicorn would, and the
        process would end with the signal's status instead of 0). Ctrl-C still ends as interrupted."""
        super().handle_exit(sig, frame)
        if sig == signal.SIGTERM and sig in self._captured_signals:
            self._captured_signals.remove(sig)


def startup_line(service: Service) -> str:
    """One line with everything an operator checks first: models, backend, dtype, limits, URL."""
    s = service.settings
    models = ", ".join(
        f"{m.name} ({m.reranker.backend_name}, {m.reranker.dtype}, {m.reranker.device}, "
        f"max_length {m.reranker.max_length})"
        for m in service.models.values()
    )
    auth = "api key required" if s.resolved_api_key else "no auth"
    index = f"index {s.index}" if s.index else "rerank only"
    return (
        f"winnow serve ready: model {models}; {index}; max_batch_tokens {s.max_batch_tokens}, "
        f"max_wait {s.max_wait_ms:g} ms, max_concurrent_requests {s.max_concurrent_requests}, "
        f"max_client_batch_size {s.max_client_batch_size}, max_body {s.max_body_bytes} B, "
        f"timeout {s.request_timeout:g} s, cache {s.cache_entries} pairs; {auth}; http://{s.host}:{s.port}"
    )


def make_server(
    settings: ServeSettings,
    loader: Callable[[str], Any] | None = None,
    on_ready: Callable[[Service], None] | None = None,
    log_level: str = "info",
) -> DrainingServer:
    """A uvicorn server for ``settings`` (not started). A model that fails to load stops the server."""
    asgi, app, admission = build_asgi(settings, loader)
    service: Service = app.state.service
    service.on_ready = on_ready
    config = uvicorn.Config(
        asgi,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        timeout_graceful_shutdown=int(settings.graceful_timeout),
        access_log=False,
    )
    server = DrainingServer(config, admission)

    def stop(reason: str) -> None:
        server.should_exit = True

    service.on_failure = stop
    server.service = service  # type: ignore[attr-defined]
    return server
