"""Qdrant as stage 1: write Documents into a collection, search it, get Candidates for the reranker.

Works with any ``qdrant_client.QdrantClient``: a server (``QdrantClient(url=...)``) or the embedded
on-disk mode (``QdrantClient(path=...)``). Chunking and embedding match Winnow's own index, so
results are comparable; payload fields become Candidate metadata and ``key = value`` filters.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from qdrant_client import QdrantClient, models
from tqdm.auto import tqdm

from winnow.models import DEFAULT_EMBEDDING_MODEL
from winnow.retrieve.chunking import Chunker
from winnow.retrieve.dense import Embedder, shared_embedder
from winnow.retrieve.documents import Candidate, Document

_RESERVED = ("text", "doc_id", "chunk_id", "title", "source", "start", "end", "updated_at", "authority")


class QdrantStore:
    """A Qdrant collection of document chunks with their embeddings (cosine) and metadata as payload."""

    def __init__(
        self,
        client: QdrantClient,
        collection: str,
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        chunk_tokens: int | None = 256,
        chunk_overlap: int = 32,
        embedder: Embedder | None = None,
    ):
        self.client = client
        self.collection = collection
        self.embedder = embedder or shared_embedder(embedding_model)
        self.chunker = Chunker(self.embedder.model_dir, chunk_tokens, chunk_overlap)

    def _ensure_collection(self) -> None:
        if not self.client.collection_exists(self.collection):
            self.client.create_collection(
                self.collection,
                vectors_config=models.VectorParams(size=self.embedder.dim, distance=models.Distance.COSINE),
            )

    def upsert(self, documents: Iterable[Document], batch_size: int = 256, progress: bool = False) -> int:
        """Chunk, embed and write documents, replacing earlier chunks of the same ids; returns chunk count."""
        self._ensure_collection()
        written = 0
        batch: list[Document] = []
        with tqdm(desc="qdrant upsert", unit="doc", disable=not progress) as bar:
            for doc in documents:
                batch.append(doc)
                if len(batch) >= batch_size:
                    written += self._write(batch)
                    bar.update(len(batch))
                    batch = []
            if batch:
                written += self._write(batch)
                bar.update(len(batch))
        return written

    def _write(self, documents: list[Document]) -> int:
        self.delete([d.id for d in documents])
        points: list[tuple[str, dict[str, Any], str]] = []
        for doc in documents:
            for chunk in self.chunker.split(doc.id, doc.text):
                payload = {key: value for key, value in doc.metadata.items() if key not in _RESERVED}
                payload.update(
                    text=chunk.text,
                    doc_id=doc.id,
                    chunk_id=chunk.chunk_id,
                    title=doc.title,
                    source=doc.source,
                    start=chunk.span[0],
                    end=chunk.span[1],
                    updated_at=doc.updated_at.isoformat() if doc.updated_at else None,
                    authority=doc.authority,
                )
                embed_text = f"{doc.title} {chunk.text}" if doc.title else chunk.text
                points.append((chunk.chunk_id, payload, embed_text))
        vectors = self.embedder.encode([text for _, _, text in points])
        self.client.upsert(
            self.collection,
            points=[
                models.PointStruct(
                    id=str(uuid.uuid5(uuid.NAMESPACE_URL, cid)), vector=vector.tolist(), payload=payload
                )
                for (cid, payload, _), vector in zip(points, vectors, strict=True)
            ],
        )
        return len(points)

    def delete(self, doc_ids: list[str]) -> None:
        """Remove every chunk of the given documents."""
        if not doc_ids or not self.client.collection_exists(self.collection):
            return
        self.client.delete(
            self.collection,
            points_selector=models.FilterSelector(
                filter=models.Filter(
                    must=[models.FieldCondition(key="doc_id", match=models.MatchAny(any=doc_ids))]
                )
            ),
        )

    def search(self, query: str, k: int = 50, filters: Mapping[str, Any] | None = None) -> list[Candidate]:
        """Top-k chunks by cosine; ``filters`` are payload ``key = value`` matches applied inside Qdrant."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query is empty: give some words to search for")
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
            query=self.embedder.encode_query(query).tolist(),
            limit=k,
            query_filter=condition,
            with_payload=True,
        ).points
        out = []
        for rank, point in enumerate(points, start=1):
            payload = dict(point.payload or {})
            metadata = {key: value for key, value in payload.items() if key not in _RESERVED}
            metadata.update(updated_at=payload.get("updated_at"), authority=payload.get("authority"))
            out.append(
                Candidate(
                    chunk_id=payload["chunk_id"],
                    doc_id=payload["doc_id"],
                    text=payload["text"],
                    title=payload.get("title", ""),
                    score=float(point.score),
                    rank=rank,
                    span=(payload["start"], payload["end"]),
                    metadata=metadata,
                    source=payload.get("source", ""),
                )
            )
        return out
