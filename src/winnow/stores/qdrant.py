"""Qdrant as stage 1: write Documents into a collection, search it, get Candidates for the reranker.

Works with any ``qdrant_client.QdrantClient``: a server (``QdrantClient(url=...)``) or the embedded
on-disk mode (``QdrantClient(path=...)``). Chunking and embedding match Winnow's own index, so
results are comparable; payload fields become Candidate metadata and ``key = value`` filters.
"""

from __future__ import annotations

from typing import Any, Unpack

import numpy as np

from winnow.extras import require_extra
from winnow.stores.chunked import ChunkedStore, ChunkRecord, StoreSettings

with require_extra("qdrant-client", "qdrant"):
    from qdrant_client import QdrantClient, models


class QdrantStore(ChunkedStore):
    """A Qdrant collection of document chunks with their embeddings (cosine) and metadata as payload."""

    name = "qdrant"

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        **settings: Unpack[StoreSettings],
    ):
        super().__init__(**settings)
        self.client = client
        self.collection = collection

    def _write(self, records: list[ChunkRecord], vectors: np.ndarray) -> None:
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=self.embedder.dim, distance=models.Distance.COSINE),
            )
        self.client.upsert(
            self.collection,
            points=[
                models.PointStruct(id=record.uuid, vector=vector.tolist(), payload=record.payload)
                for record, vector in zip(records, vectors, strict=True)
            ],
        )

    def _delete(self, doc_ids: list[str]) -> None:
        if not self.client.collection_exists(self.collection):
            return
        self.client.delete(
            self.collection,
            points_selector=models.FilterSelector(
                filter=models.Filter(
                    must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=doc_ids))]
                )
            ),
        )

    def _query(
        self, vector: np.ndarray, k: int, filters: dict[str, Any]
    ) -> list[tuple[dict[str, Any], float]]:
        condition = None
        if filters:
            condition = models.Filter(
                must=[
                    models.FieldCondition(key=key, match=models.MatchValue(value=value))
                    for key, value in filters.items()
                ]
            )
        points = self.client.query_points(
            self.collection,
            query=vector.tolist(),
            limit=k,
            query_filter=condition,
            with_payload=True,
        ).points
        return [(dict(point.payload or {}), float(point.score)) for point in points]
