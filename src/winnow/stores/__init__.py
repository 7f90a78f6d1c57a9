"""Adapters that let stage 2 run on candidates from an external vector store (see docs/integrations.md).

Chroma, Milvus, pgvector, Pinecone and Qdrant share ``chunked.ChunkedStore``; ``open.open_store`` opens
one from a URI. Each adapter lives in its own module and imports its client library only there, so
Winnow installs without them: `from winnow.stores.chroma import ChromaStore` needs
`pip install 'winnow[chroma]'`.
"""

from winnow.stores.base import CandidateSource

__all__ = ["CandidateSource"]
