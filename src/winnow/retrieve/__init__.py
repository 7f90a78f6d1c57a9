"""Stage 1: ingest documents, index them on disk, recall candidates with BM25, dense vectors or both."""

from winnow.retrieve.documents import Candidate, Chunk, Document
from winnow.retrieve.filters import Filters
from winnow.retrieve.index import AddStats, Index, IndexNotFoundError, IndexStats

__all__ = [
    "AddStats",
    "Candidate",
    "Chunk",
    "Document",
    "Filters",
    "Index",
    "IndexNotFoundError",
    "IndexStats",
]
