"""Stage 2: cross-encoder reranking."""

from winnow.rerank.cache import ScoreCache
from winnow.rerank.cascade import Cascade
from winnow.rerank.reranker import DEFAULT_RERANKER, Reranker
from winnow.rerank.results import Ranking, RerankResult

__all__ = ["DEFAULT_RERANKER", "Cascade", "Ranking", "RerankResult", "Reranker", "ScoreCache"]
