"""Milvus as stage 1, through ``pymilvus.MilvusClient``: Milvus Lite (embedded, one local file) or a server.

``MilvusStore.open("chunks.db")`` starts Milvus Lite in-process from a file path; a ``http://`` URI
connects to a Milvus server instead. Each chunk is one row (string primary key, COSINE vector, the
payload as dynamic fields), so ``key = value`` filters become Milvus boolean expressions.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Unpack

import numpy as np

from winnow.extras import require_extra
from winnow.stores.chunked import ChunkedStore, ChunkRecord, StoreSettings

with require_extra("pymilvus", "milvus"):
    from pymilvus import MilvusClient

_FIELD = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _expression(filters: dict[str, Any]) -> str:
    """``key = value`` filters as a Milvus boolean expression over dynamic fields (values JSON-quoted)."""
    parts = []
    for key, value in filters.items():
        if not _FIELD.match(key):
            raise ValueError(f"Milvus filter key {key!r} must be letters, digits and '_'")
        parts.append(f"{key} == {json.dumps(value)}")
    return " and ".join(parts)


class MilvusStore(ChunkedStore):
    """A Milvus collection of document chunks (COSINE metric) with their metadata as dynamic fields."""

    name = "milvus"

    def __init__(
        self,
        client: MilvusClient,
        collection: str,
        **settings: Unpack[StoreSettings],
    ):
        super().__init__(**settings)
        self.client = client
        self.collection = collection

    @classmethod
    def open(
        cls, uri: str | Path, collection: str = "winnow", **settings: Unpack[StoreSettings]
    ) -> MilvusStore:
        """Milvus Lite when ``uri`` is a file path (e.g. ``chunks.db``), else a server URI (``http://...``)."""
        return cls(MilvusClient(str(uri)), collection, **settings)

    def _ensure_collection(self) -> None:
        if not self.client.has_collection(self.collection):
            self.client.create_collection(
                self.collection,
                dimension=self.embedder.dim,
                primary_field_name="id",
                id_type="string",
                max_length=64,
                vector_field_name="vector",
                metric_type="COSINE",
                auto_id=False,
                enable_dynamic_field=True,
            )

    def _write(self, records: list[ChunkRecord], vectors: np.ndarray) -> None:
        self._ensure_collection()
        rows = [
            {**record.payload, "id": record.id, "vector": vector.tolist()}
            for record, vector in zip(records, vectors, strict=True)
        ]
        self.client.upsert(self.collection, rows)

    def _delete(self, doc_ids: list[str]) -> None:
        if self.client.has_collection(self.collection):
            self.client.delete(self.collection, filter=f"doc_id in {json.dumps(doc_ids)}")

    def _query(
        self, vector: np.ndarray, k: int, filters: dict[str, Any]
    ) -> list[tuple[dict[str, Any], float]]:
        if not self.client.has_collection(self.collection):
            return []
        hits = self.client.search(
            self.collection,
            data=[vector.tolist()],
            limit=k,
            filter=_expression(filters),
            output_fields=["*"],
        )[0]
        out = []
        for hit in hits:
            payload = {key: value for key, value in hit["entity"].items() if key not in ("id", "vector")}
            out.append((payload, float(hit["distance"])))
        return out
