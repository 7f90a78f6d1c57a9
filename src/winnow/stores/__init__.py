"""Adapters that let stage 2 run on candidates from an external vector store (see docs/stage1.md).

Each adapter lives in its own module and imports its client library only there, so Winnow installs
without them: `from winnow.stores.qdrant import QdrantStore` needs `pip install 'winnow[qdrant]'`.
"""

from winnow.stores.base import CandidateSource

__all__ = ["CandidateSource"]
