"""Winnow: two-stage retrieval for RAG. Recall candidates fast, then rerank them with a cross-encoder."""

from winnow.errors import ModelNotFoundError, WinnowError
from winnow.rerank import DEFAULT_RERANKER, Cascade, Ranking, Reranker, RerankResult, ScoreCache

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_RERANKER",
    "Cascade",
    "ModelNotFoundError",
    "Ranking",
    "RerankResult",
    "Reranker",
    "ScoreCache",
    "WinnowError",
    "__version__",
]
