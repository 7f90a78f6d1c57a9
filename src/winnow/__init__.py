"""Winnow: two-stage retrieval for RAG. Recall candidates fast, then rerank them with a cross-encoder."""

from typing import TYPE_CHECKING

from winnow._lazy import lazy_attributes
from winnow.errors import ModelNotFoundError, WinnowError

if TYPE_CHECKING:
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

# The rerankers import torch: they load on first use, so `import winnow` (and `winnow --help`) stay fast.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    dict.fromkeys(
        ["DEFAULT_RERANKER", "Cascade", "Ranking", "RerankResult", "Reranker", "ScoreCache"], "winnow.rerank"
    ),
)
