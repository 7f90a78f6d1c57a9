"""Chroma as stage 1: an embedded, on-disk Chroma collection that Winnow fills and searches.

``ChromaStore.open(path, collection)`` runs Chroma in-process (``chromadb.PersistentClient``), no
server needed; any other ``chromadb`` client works too. Winnow supplies the embeddings (Chroma's own
default embedding function is never used, so nothing is downloaded), the collection uses cosine space,
and metadata fields become ``key = value`` filters (``where``) evaluated inside Chroma.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from winnow.extras import require_extra
from winnow.stores.chunked import ChunkedStore, ChunkRecord, StoreSettings

with require_extra("chromadb", "chroma"):
    import chromadb
    from chromadb.config import Settings


def _metadata(payload: dict[str, Any]) -> dict[str, Any]:
    """Chroma keeps str/int/float/bool values: None is left out, lists and dicts are stored as JSON text."""
    out: dict[str, Any] = {}
    for key, value in payload.items():
        if key == "text" or value is None:
            continue
        out[key] = value if isinstance(value, str | int | float | bool) else json.dumps(value, default=str)
    return out


class ChromaStore(ChunkedStore):
    """A Chroma collection of document chunks (cosine space) with their metadata."""

    name = "chroma"

    def __init__(
        self,
        client: Any,
        collection: str,
        **settings: Unpack[StoreSettings],
    ):
        super().__init__(**settings)
        self.client = client
        self.collection = client.get_or_create_collection(
            collection, embedding_function=None, metadata={"hnsw:space": "cosine"}
        )

    @classmethod
    def open(
        cls, path: str | Path, collection: str = "winnow", **settings: Unpack[StoreSettings]
    ) -> ChromaStore:
        """An embedded Chroma database in the folder ``path`` (created if missing), telemetry off."""
        client = chromadb.PersistentClient(path=str(path), settings=Settings(anonymized_telemetry=False))
        return cls(client, collection, **settings)

    def _write(self, records: list[ChunkRecord], vectors: np.ndarray) -> None:
        self.collection.upsert(
            ids=[r.id for r in records],
            embeddings=vectors.astype(np.float32),
            documents=[r.payload["text"] for r in records],
            metadatas=[_metadata(r.payload) for r in records],
        )

    def _delete(self, doc_ids: list[str]) -> None:
        self.collection.delete(where={"doc_id": {"$in": doc_ids}})

    def _query(
        self, vector: np.ndarray, k: int, filters: dict[str, Any]
    ) -> list[tuple[dict[str, Any], float]]:
        conditions = [{key: {"$eq": value}} for key, value in filters.items()]
        where = None if not conditions else conditions[0] if len(conditions) == 1 else {"$and": conditions}
        found = self.collection.query(
            query_embeddings=[vector.astype(np.float32)],
            n_results=k,
            where=where,
            include=["documents", "metadatas", "distances"],
        )
        return [
            ({**(metadata or {}), "text": text}, 1.0 - float(distance))
            for text, metadata, distance in zip(
                found["documents"][0], found["metadatas"][0], found["distances"][0], strict=True
            )
        ]
