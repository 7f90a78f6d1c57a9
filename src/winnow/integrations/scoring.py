"""What the framework adapters share: which reranker to use and the metadata keys they add."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from winnow.rerank import Cascade, Reranker
    from winnow.rerank.results import RerankResult

# Added to each document's metadata next to the framework's own fields, never replacing them.
SCORE_KEY = "winnow_score"  # the cross-encoder's raw logit
PROBABILITY_KEY = "winnow_probability"  # its (calibrated) probability of relevance, in [0, 1]


def as_reranker(reranker: Reranker | Cascade | str | None) -> Reranker | Cascade:
    """A Reranker or Cascade as given, or a Reranker loaded from a model name or path (None: the default)."""
    from winnow.rerank import DEFAULT_RERANKER, Reranker

    if reranker is None or isinstance(reranker, str):
        return Reranker(reranker or DEFAULT_RERANKER)
    if not hasattr(reranker, "rerank"):
        kind = type(reranker).__name__
        raise TypeError(f"reranker must be a winnow Reranker, Cascade or model name, not {kind}")
    return reranker


def scored(metadata: dict[str, Any] | None, result: RerankResult) -> dict[str, Any]:
    """A copy of ``metadata`` with the reranker's score and probability added."""
    return {**(metadata or {}), SCORE_KEY: result.score, PROBABILITY_KEY: result.probability}
