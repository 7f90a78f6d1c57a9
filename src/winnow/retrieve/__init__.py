"""Stage 1: ingest documents, index them on disk, recall candidates with BM25, dense vectors or both."""

from typing import TYPE_CHECKING

from winnow._lazy import lazy_attributes
from winnow.retrieve.filters import Filters

if TYPE_CHECKING:
    from winnow.retrieve.index import AddStats, Index, IndexNotFoundError, IndexStats

__all__ = [
    "AddStats",
    "Filters",
    "Index",
    "IndexNotFoundError",
    "IndexStats",
]

# The index imports numpy, bm25s and the embedder: loaded on first use, so the CLI starts fast.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    dict.fromkeys(["AddStats", "Index", "IndexNotFoundError", "IndexStats"], "winnow.retrieve.index"),
)
