"""Cohere's rerank API (v2) through the official ``cohere`` SDK: ``Reranker("cohere:rerank-v3.5")``.

Limits: Cohere recommends at most 1,000 documents per request; documents longer than
``max_tokens_per_doc`` (default 4,096 tokens) are truncated by the API. Billing is in search units
(a query with up to 100 documents; long documents count as several), reported in ``meta.billed_units``.
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

DEFAULT_BASE_URL = "https://api.cohere.com"
MAX_DOCUMENTS = 1_000
KEY_VARIABLES = ("CO_API_KEY", "COHERE_API_KEY")


class Client:
    unit = "search_units"

    def __init__(self, model: str, key: str | None, base_url: str | None, timeout: float, extra: str) -> None:
        cohere = require("cohere", extra)
        self.model = model
        self.base_url = endpoint(base_url, "CO_API_URL", DEFAULT_BASE_URL)
        # Retries are Winnow's (the same policy for every provider), so the SDK's own are off.
        self._client = cohere.ClientV2(
            api_key=api_key(key, KEY_VARIABLES, "Cohere"),
            base_url=self.base_url,
            timeout=timeout,
            max_retries=0,
            client_name="winnow",
        )

    def batches(self, query: str, texts: list[str]) -> list[list[int]]:
        return split_batches(texts, MAX_DOCUMENTS)

    def rerank(self, query: str, texts: list[str]) -> BatchResult:
        import httpx
        from cohere.core.api_error import ApiError

        try:
            response = self._client.rerank(model=self.model, query=query, documents=texts)
        except ApiError as exc:
            raise_for_status("Cohere", exc.status_code, exc.headers, exc.body)
        except httpx.TransportError as exc:  # timeouts and refused or dropped connections
            raise TransientAPIError(f"{type(exc).__name__}: {exc}") from None
        billed = response.meta.billed_units if response.meta else None
        units = float(billed.search_units or 0) if billed else 0.0
        results = [(item.index, item.relevance_score) for item in response.results]
        return BatchResult(scores_by_index("Cohere", results, len(texts)), units)
