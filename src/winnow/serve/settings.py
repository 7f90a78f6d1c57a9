"""Everything `winnow serve` can be told, in one place, with the limits TEI and Cohere use by default."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from winnow.models.registry import DEFAULT_RERANKER

API_KEY_ENV = "WINNOW_API_KEY"


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """Settings of one service.

    ``models`` are the served rerankers (the first is the default; a request's ``model`` field picks
    another). ``index`` adds /v1/search and /v1/ask. ``max_batch_tokens`` is the padded token budget of
    one forward pass, ``max_wait_ms`` how long the inference worker waits for more requests to share it.
    ``max_concurrent_requests`` is the admission limit (beyond it: 429 at once); ``request_timeout`` the
    seconds a request may take before it gets 503 and its work is dropped. ``cache_entries`` bounds
    each model's score cache (repeated query-document pairs skip the model; 0 turns it off).
    """

    models: tuple[str, ...] = (DEFAULT_RERANKER,)
    index: Path | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    backend: str = "auto"
    dtype: str | None = None
    max_length: int = 512
    max_batch_tokens: int = 4096
    max_wait_ms: float = 5.0
    max_concurrent_requests: int = 64
    max_client_batch_size: int = 1000
    max_body_bytes: int = 10 * 1024 * 1024
    request_timeout: float = 30.0
    cache_entries: int = 20_000
    api_key: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()
    graceful_timeout: float = 30.0

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("serve at least one model")
        positive = {
            "max_batch_tokens": self.max_batch_tokens,
            "max_concurrent_requests": self.max_concurrent_requests,
            "max_client_batch_size": self.max_client_batch_size,
            "max_body_bytes": self.max_body_bytes,
            "request_timeout": self.request_timeout,
        }
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"{name} must be positive, not {value}")
        if self.max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, not {self.max_wait_ms}")
        if self.cache_entries < 0:
            raise ValueError(f"cache_entries must be >= 0, not {self.cache_entries}")

    @property
    def resolved_api_key(self) -> str | None:
        """The key from the settings, else from WINNOW_API_KEY; None (no auth) when neither is set."""
        return self.api_key or os.environ.get(API_KEY_ENV) or None
