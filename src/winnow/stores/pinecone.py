"""Pinecone as stage 1, over its documented REST data plane (no SDK needed, only httpx).

``PineconeStore(host, api_key)`` talks to one index host (``https://INDEX-PROJECT.svc.REGION.pinecone.io``,
shown in the Pinecone console) with the ``Api-Key`` and ``X-Pinecone-API-Version`` headers:
``POST /vectors/upsert``, ``POST /query``, ``GET /vectors/list`` and ``POST /vectors/delete``. The index
must use the cosine metric and Winnow's embedding dimension (384 for all-MiniLM-L6-v2). Record ids are
``DOC_ID#CHUNK_ID`` so a document's chunks can be listed by prefix and deleted, which serverless
indexes allow (they do not delete by metadata filter).
"""

from __future__ import annotations

import os
from typing import Any, Unpack

import numpy as np

from winnow.errors import WinnowError
from winnow.extras import require_extra
from winnow.stores.chunked import ChunkedStore, ChunkRecord, StoreSettings

with require_extra("httpx", "pinecone"):
    import httpx

API_VERSION = "2025-04"
UPSERT_BATCH = 100  # Pinecone's recommended batch size; a request may hold at most 1000 records / 2 MB.


def _metadata(payload: dict[str, Any]) -> dict[str, Any]:
    """Pinecone metadata takes strings, numbers, booleans and lists of strings; None is left out."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            value = [str(v) for v in value]
        elif not isinstance(value, str | int | float | bool):
            value = str(value)
        out[key] = value
    return out


class PineconeStore(ChunkedStore):
    """One Pinecone index (cosine metric) and namespace holding document chunks with their metadata."""

    name = "pinecone"

    def __init__(
        self,
        host: str,
        api_key: str | None = None,
        namespace: str = "",
        timeout: float = 30.0,
        **settings: Unpack[StoreSettings],
    ):
        api_key = api_key or os.environ.get("PINECONE_API_KEY")
        if not api_key:
            raise WinnowError("Pinecone needs an API key: pass api_key= or set PINECONE_API_KEY")
        super().__init__(**settings)
        self.base_url = host if "://" in host else f"https://{host}"
        self.namespace = namespace
        self.http = httpx.Client(
            base_url=self.base_url,
            timeout=timeout,
            headers={"Api-Key": api_key, "X-Pinecone-API-Version": API_VERSION},
        )

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise WinnowError(f"cannot reach Pinecone at {self.base_url}: {exc}") from exc
        if response.status_code >= 400:
            raise WinnowError(
                f"Pinecone answered {response.status_code} to {method} {path}: {response.text[:300]}"
            )
        return response.json() if response.content else {}

    def _write(self, records: list[ChunkRecord], vectors: np.ndarray) -> None:
        vectors_json = [
            {"id": f"{r.payload['doc_id']}#{r.id}", "values": v.tolist(), "metadata": _metadata(r.payload)}
            for r, v in zip(records, vectors, strict=True)
        ]
        for start in range(0, len(vectors_json), UPSERT_BATCH):
            batch = vectors_json[start : start + UPSERT_BATCH]
            self._call("POST", "/vectors/upsert", json={"vectors": batch, "namespace": self.namespace})

    def _ids_of(self, doc_id: str) -> list[str]:
        ids: list[str] = []
        token = None
        while True:
            params = {"prefix": f"{doc_id}#", "namespace": self.namespace, "limit": 100}
            if token:
                params["paginationToken"] = token
            page = self._call("GET", "/vectors/list", params=params)
            ids += [v["id"] for v in page.get("vectors", [])]
            token = (page.get("pagination") or {}).get("next")
            if not token:
                return ids

    def _delete(self, doc_ids: list[str]) -> None:
        ids = [record_id for doc_id in doc_ids for record_id in self._ids_of(doc_id)]
        for start in range(0, len(ids), 1000):
            batch = {"ids": ids[start : start + 1000], "namespace": self.namespace}
            self._call("POST", "/vectors/delete", json=batch)

    def _query(
        self, vector: np.ndarray, k: int, filters: dict[str, Any]
    ) -> list[tuple[dict[str, Any], float]]:
        body: dict[str, Any] = {
            "namespace": self.namespace,
            "vector": vector.tolist(),
            "topK": k,
            "includeValues": False,
            "includeMetadata": True,
        }
        if filters:
            body["filter"] = {key: {"$eq": value} for key, value in filters.items()}
        matches = self._call("POST", "/query", json=body).get("matches", [])
        return [(match.get("metadata") or {}, float(match["score"])) for match in matches]
