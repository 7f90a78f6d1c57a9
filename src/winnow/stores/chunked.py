"""What every vector-database adapter shares: chunk and embed like Winnow's own index, store one record
per chunk, and turn the database's hits back into Candidates.

An adapter only says how to write records, delete a document's records and run a nearest-neighbour
query; so every store chunks, embeds, keeps metadata and filters the same way, and their results are
comparable with each other and with ``winnow.retrieve.Index``.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict, Unpack

import numpy as np
from tqdm.auto import tqdm

from winnow.models import DEFAULT_EMBEDDING_MODEL
from winnow.records import Candidate, Document, title_and_text
from winnow.retrieve.chunking import Chunker
from winnow.retrieve.dense import Embedder, shared_embedder

# Fields Winnow keeps beside the user's metadata in every record; user fields of these names are dropped.
RESERVED = ("text", "doc_id", "chunk_id", "title", "source", "start", "end", "updated_at", "authority")


@dataclass(frozen=True, slots=True)
class ChunkRecord:
    """One chunk as a store keeps it: a stable id, its flat payload, and the text that was embedded."""

    id: str
    payload: dict[str, Any]
    embed_text: str

    @property
    def uuid(self) -> str:
        """The id as a UUID, for stores (Qdrant) whose point ids must be integers or UUIDs."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, self.id))


def check_filters(filters: Mapping[str, Any] | None) -> dict[str, Any]:
    """``key = value`` metadata filters as a dict; a clear error for anything a vector store cannot match."""
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise ValueError(
            f"an external store takes key=value metadata filters as a dict, not {type(filters).__name__}"
        )
    out = dict(filters)
    for key, value in out.items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"filter key {key!r} must be a non-empty string")
        if key in ("updated_after", "updated_before", "where"):
            raise ValueError(f"filter {key!r} works on a winnow Index only; stores match key=value metadata")
        if not isinstance(value, str | int | float | bool):
            raise ValueError(f"filter {key}={value!r}: values must be strings, numbers or booleans")
    return out


def candidate_from_payload(payload: Mapping[str, Any], score: float, rank: int) -> Candidate:
    """The Candidate a stored record stands for: Winnow's fields, and the user's metadata beside them."""
    return Candidate(
        text=payload["text"],
        doc_id=payload["doc_id"],
        chunk_id=payload["chunk_id"],
        title=payload.get("title") or "",
        source=payload.get("source") or "",
        span=(int(payload["start"]), int(payload["end"])),
        score=float(score),
        rank=rank,
        updated_at=payload.get("updated_at"),
        authority=payload.get("authority"),
        metadata={key: value for key, value in payload.items() if key not in RESERVED},
    )


class StoreSettings(TypedDict, total=False):
    """How a store chunks and embeds, as Winnow's ``Index`` does: each adapter takes these as keywords."""

    embedding_model: str
    chunk_tokens: int | None
    chunk_overlap: int
    embedder: Embedder | None


class ChunkedStore(ABC):
    """Base of the vector-database adapters: ``upsert``, ``delete`` and ``search`` (a CandidateSource).

    Subclasses implement ``_write``, ``_delete`` and ``_query``. Records hold the chunk text, ids,
    span, title, source, date and authority next to the document's own metadata fields.
    """

    name = "store"

    def __init__(self, **settings: Unpack[StoreSettings]):
        known = list(StoreSettings.__annotations__)
        if unknown := sorted(set(settings) - set(known)):
            raise TypeError(f"unknown store settings {unknown}; known: {known}")
        self.embedder = settings.get("embedder") or shared_embedder(
            settings.get("embedding_model", DEFAULT_EMBEDDING_MODEL)
        )
        self.chunker = Chunker(
            self.embedder.model_dir, settings.get("chunk_tokens", 256), settings.get("chunk_overlap", 32)
        )

    def upsert(self, documents: Iterable[Document], batch_size: int = 256, progress: bool = False) -> int:
        """Chunk, embed and write documents, replacing earlier chunks of the same ids; returns chunk count."""
        written = 0
        batch: list[Document] = []
        with tqdm(desc=f"{self.name} upsert", unit="doc", disable=not progress) as bar:
            for doc in documents:
                batch.append(doc)
                if len(batch) >= batch_size:
                    written += self._write_batch(batch)
                    bar.update(len(batch))
                    batch = []
            if batch:
                written += self._write_batch(batch)
                bar.update(len(batch))
        return written

    def _write_batch(self, documents: list[Document]) -> int:
        self.delete([d.id for d in documents])
        records = [record for doc in documents for record in self._records(doc)]
        if records:
            self._write(records, self.embedder.encode([r.embed_text for r in records]))
        return len(records)

    def _records(self, doc: Document) -> list[ChunkRecord]:
        records = []
        for chunk in self.chunker.split(doc.id, doc.text):
            payload = {key: value for key, value in doc.metadata.items() if key not in RESERVED}
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
            embed_text = title_and_text(doc.title, chunk.text)
            records.append(ChunkRecord(chunk.chunk_id, payload, embed_text))
        return records

    def delete(self, doc_ids: list[str]) -> None:
        """Remove every chunk of the given documents."""
        if doc_ids:
            self._delete(list(doc_ids))

    def search(self, query: str, k: int = 50, filters: Mapping[str, Any] | None = None) -> list[Candidate]:
        """Top-k chunks by cosine similarity; ``filters`` are ``key = value`` matches applied in the store."""
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query is empty: give some words to search for")
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, not {k!r}")
        hits = self._query(self.embedder.encode_query(query), k, check_filters(filters))
        return [candidate_from_payload(payload, score, rank) for rank, (payload, score) in enumerate(hits, 1)]

    @abstractmethod
    def _write(self, records: list[ChunkRecord], vectors: np.ndarray) -> None:
        """Store the records with their (unit-length) embeddings."""

    @abstractmethod
    def _delete(self, doc_ids: list[str]) -> None:
        """Remove every record whose ``doc_id`` is one of ``doc_ids`` (a missing collection is no error)."""

    @abstractmethod
    def _query(
        self, vector: np.ndarray, k: int, filters: dict[str, Any]
    ) -> list[tuple[dict[str, Any], float]]:
        """The best ``k`` (payload, cosine similarity) pairs matching every ``filters`` item, best first."""
