"""Jina AI's rerank API over HTTP (Jina has no official Python SDK):
``Reranker("jina:jina-reranker-v2-base-multilingual")``.

POST {base}/v1/rerank with {model, query, documents, top_n} and ``Authorization: Bearer <key>``;
the answer is {results: [{index, relevance_score}], usage: {total_tokens}}. Jina documents no
per-request document limit; Winnow sends at most 1,000 documents per request, like Cohere and Voyage.
Billing is in tokens (``usage.total_tokens``).
"""

from __future__ import annotations

from winnow.rerank.hosted.reranker import (
    BatchResult,
    HostedAPIError,
    TransientAPIError,
    api_key,
    endpoint,
    raise_for_status,
    require,
    scores_by_index,
    split_batches,
)

DEFAULT_BASE_URL = "https://api.jina.ai"
MAX_DOCUMENTS = 1_000


class Client:
    unit = "tokens"

    def __init__(self, model: str, key: str | None, base_url: str | None, timeout: float, extra: str) -> None:
        httpx = require("httpx", extra)
        self.model = model
        self.base_url = endpoint(base_url, "JINA_BASE_URL", DEFAULT_BASE_URL)
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {api_key(key, ('JINA_API_KEY',), 'Jina AI')}",
                "Accept": "application/json",
            },
        )

    def batches(self, query: str, texts: list[str]) -> list[list[int]]:
        return split_batches(texts, MAX_DOCUMENTS)

    def rerank(self, query: str, texts: list[str]) -> BatchResult:
        import httpx

        body = {"model": self.model, "query": query, "documents": texts, "top_n": len(texts)}
        try:
            response = self._http.post("/v1/rerank", json=body)
        except httpx.TransportError as exc:
            raise TransientAPIError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise_for_status("Jina AI", response.status_code, response.headers, response.text)
        try:
            data = response.json()
            results = [(int(item["index"]), float(item["relevance_score"])) for item in data["results"]]
            units = float(data.get("usage", {}).get("total_tokens", 0))
        except (ValueError, KeyError, TypeError) as exc:
            raise HostedAPIError(f"Jina AI answered something that is not a rerank result: {exc}") from None
        return BatchResult(scores_by_index("Jina AI", results, len(texts)), units)
