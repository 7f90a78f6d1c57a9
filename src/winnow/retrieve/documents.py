"""The units stage 1 works with: documents in, chunks stored, candidates out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(slots=True)
class Document:
    """One source document as ingested.

    ``id`` is the upsert key: adding a document with an id already in the index replaces it.
    ``authority`` is a weight in [0, 1] from the source-pattern mapping (higher = more trusted);
    ``metadata`` holds any user fields and is what ``key = value`` filters match against.
    """

    id: str
    text: str
    title: str = ""
    source: str = ""
    updated_at: datetime | None = None
    authority: float = 0.5
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"document id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.text, str):
            raise TypeError(f"document {self.id!r}: text must be a string, not {type(self.text).__name__}")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document's text; ``span`` is its (start, end) character range in ``Document.text``."""

    chunk_id: str
    doc_id: str
    text: str
    span: tuple[int, int]


@dataclass(slots=True)
class Candidate:
    """A stage-1 hit: one chunk, where it ranked, and the metadata of the document it came from.

    ``score`` is the stage-1 score of the mode that produced it (BM25, cosine, or fused);
    ``rank`` is 1-based. ``metadata`` carries the document's user fields plus ``updated_at`` and
    ``authority`` so a downstream step can use them without another lookup.
    """

    chunk_id: str
    doc_id: str
    text: str
    title: str
    score: float
    rank: int
    span: tuple[int, int]
    metadata: dict[str, Any]
    source: str
