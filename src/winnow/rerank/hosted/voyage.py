"""Voyage AI's rerank API through the official ``voyageai`` SDK: ``Reranker("voyage:rerank-2")``.

Limits (docs.voyageai.com/reference/reranker-api): at most 1,000 documents per request, and at most
600K tokens per request for rerank-2.5, rerank-2.5-lite, rerank-2 and rerank-2-lite (300K for
rerank-1 and rerank-lite-1), counted as query tokens × documents + all document tokens. Winnow counts
a text's UTF-8 bytes as its tokens (every token is at least one byte), so a batch never exceeds the
limit without Voyage's tokenizer. Queries and documents over the model's context are truncated by the
API (``truncation=True``). Billing is in tokens (``usage.total_tokens``).
"""

from __future__ import annotations

from winnow.rerank.hosted.reranker import (
    BatchResult,
    TransientAPIError,
    api_key,
    endpoint,
    raise_for_status,
    require,
    scores_by_index,
    split_batches,
)

DEFAULT_BASE_URL = "https://api.voyageai.com/v1"
MAX_DOCUMENTS = 1_000
MAX_TOKENS = {"rerank-1": 300_000, "rerank-lite-1": 300_000}
DEFAULT_MAX_TOKENS = 600_000
SPECIAL_TOKENS = 8  # separators and markers the model adds around each pair


def byte_tokens(text: str) -> int:
    """An upper bound on a text's tokens: its UTF-8 length."""
    return len(text.encode("utf-8"))


class Client:
    unit = "tokens"

    def __init__(self, model: str, key: str | None, base_url: str | None, timeout: float, extra: str) -> None:
        voyageai = require("voyageai", extra)
        self.model = model
        self.base_url = endpoint(base_url, "VOYAGE_BASE_URL", DEFAULT_BASE_URL)
        self.max_tokens = MAX_TOKENS.get(model, DEFAULT_MAX_TOKENS)
        # max_retries=0: one attempt per call; Winnow retries with the same policy for every provider.
        self._client = voyageai.Client(
            api_key=api_key(key, ("VOYAGE_API_KEY",), "Voyage AI"),
            max_retries=0,
            timeout=timeout,
            base_url=self.base_url,
        )

    def batches(self, query: str, texts: list[str]) -> list[list[int]]:
        query_tokens = byte_tokens(query)
        return split_batches(
            texts,
            MAX_DOCUMENTS,
            self.max_tokens,
            lambda text: query_tokens + byte_tokens(text) + SPECIAL_TOKENS,
        )

    def rerank(self, query: str, texts: list[str]) -> BatchResult:
        from voyageai import error

        try:
            response = self._client.rerank(query, texts, model=self.model, truncation=True)
        except (error.APIConnectionError, error.Timeout, error.TryAgain) as exc:
            raise TransientAPIError(f"{type(exc).__name__}: {exc}") from None
        except error.VoyageError as exc:
            raise_for_status("Voyage AI", exc.http_status, exc.headers, exc.user_message)
        results = [(item.index, item.relevance_score) for item in response.results]
        return BatchResult(scores_by_index("Voyage AI", results, len(texts)), float(response.total_tokens))
