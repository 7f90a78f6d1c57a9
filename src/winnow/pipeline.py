"""Two-stage retrieval in one call: stage-1 recall from an Index, then cross-encoder reranking.

``Pipeline.rerank`` takes candidates from anywhere (a list of dicts from Qdrant, Pinecone, pgvector...),
so a team that already runs a vector database keeps it and only adds stage 2.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from winnow.retrieve.documents import Candidate
from winnow.retrieve.filters import Filters
from winnow.retrieve.index import Index, Mode
from winnow.stores.base import CandidateSource

if TYPE_CHECKING:
    from winnow.rerank import Reranker


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """One final result: where stage 1 put it, what the reranker said, and what it is.

    ``rank`` is the final 1-based rank; ``stage1_rank``/``stage1_score`` come from recall (for external
    candidates, their position in the list given and their ``score`` field if any). ``score`` and
    ``probability`` are the reranker's logit and probability, None when reranking was skipped.
    """

    rank: int
    stage1_rank: int
    stage1_score: float | None
    score: float | None
    probability: float | None
    text: str
    doc_id: str | None
    chunk_id: str | None
    title: str
    source: str
    span: tuple[int, int] | None
    metadata: dict[str, Any]
    candidate: Any


@dataclass(frozen=True, slots=True)
class PipelineResponse(Sequence[PipelineResult]):
    """Results best first, plus the milliseconds each stage took (``timings``: stage1, rerank, total)."""

    query: str
    results: list[PipelineResult]
    timings: dict[str, float] = field(default_factory=dict)
    candidates: int = 0

    def __getitem__(self, item):  # type: ignore[override]
        return self.results[item]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[PipelineResult]:
        return iter(self.results)


_FIELDS = (
    "text",
    "content",
    "page_content",
    "score",
    "doc_id",
    "id",
    "chunk_id",
    "title",
    "source",
    "span",
    "metadata",
)


def _describe(candidate: Any, position: int) -> dict[str, Any]:
    """Uniform fields of a stage-1 Candidate, a dict from an external store, an object, or a string."""
    if isinstance(candidate, Candidate):
        return {
            "stage1_rank": candidate.rank,
            "stage1_score": candidate.score,
            "text": candidate.text,
            "doc_id": candidate.doc_id,
            "chunk_id": candidate.chunk_id,
            "title": candidate.title,
            "source": candidate.source,
            "span": candidate.span,
            "metadata": candidate.metadata,
        }
    if isinstance(candidate, str):
        got: Mapping[str, Any] = {"text": candidate}
    elif isinstance(candidate, Mapping):
        got = candidate
    else:
        got = {key: getattr(candidate, key) for key in _FIELDS if hasattr(candidate, key)}
    score = got.get("score")
    doc_id = got.get("doc_id", got.get("id"))
    span = got.get("span")
    return {
        "stage1_rank": position + 1,
        "stage1_score": float(score) if isinstance(score, int | float) else None,
        "text": got.get("text") or got.get("content") or got.get("page_content") or "",
        "doc_id": None if doc_id is None else str(doc_id),
        "chunk_id": got.get("chunk_id"),
        "title": got.get("title") or "",
        "source": got.get("source") or "",
        "span": tuple(span) if span is not None else None,
        "metadata": dict(got.get("metadata") or {}),
    }


class Pipeline:
    """Stage 1 (an ``Index``, or any ``CandidateSource`` such as ``QdrantStore``) then stage 2 (``reranker``).

    Either may be None.
    Without an index only ``rerank`` works (bring your own candidates); without a reranker results
    keep their stage-1 order (the ``--no-rerank`` view).
    """

    def __init__(
        self, index: Index | CandidateSource | None, reranker: Reranker | None = None, mode: Mode = "hybrid"
    ):
        self.index = index
        self.reranker = reranker
        self.mode = mode

    def _recall(self, query: str, candidates: int, filters: Any, mode: Mode | None) -> list[Candidate]:
        if self.index is None:
            raise ValueError("this Pipeline has no index; use pipeline.rerank(query, candidates) instead")
        if isinstance(self.index, Index):
            return self.index.search(query, k=candidates, mode=mode or self.mode, filters=filters)
        return self.index.search(query, k=candidates, filters=filters)

    def _finish(
        self, query: str, pool: Sequence[Any], ranking: Any, top_k: int, timings: dict
    ) -> PipelineResponse:
        results = []
        if ranking is None:
            chosen = [(i, None, None) for i in range(min(top_k, len(pool)))]
        else:
            chosen = [(r.index, r.score, r.probability) for r in ranking]
        for rank, (i, score, probability) in enumerate(chosen, start=1):
            fields = _describe(pool[i], i)
            results.append(
                PipelineResult(rank=rank, score=score, probability=probability, candidate=pool[i], **fields)
            )
        return PipelineResponse(query=query, results=results, timings=timings, candidates=len(pool))

    def _rerank(self, query: str, pool: Sequence[Any], top_k: int):
        if self.reranker is None or not pool:
            return None
        return self.reranker.rerank(query, list(pool), top_k=top_k)

    def search(
        self,
        query: str,
        candidates: int = 50,
        top_k: int = 5,
        filters: Filters | Mapping[str, Any] | None = None,
        mode: Mode | None = None,
    ) -> PipelineResponse:
        """Recall ``candidates`` chunks, rerank them, return the best ``top_k`` with per-stage timings."""
        _check_sizes(candidates, top_k)
        start = time.perf_counter()
        pool = self._recall(query, candidates, filters, mode)
        middle = time.perf_counter()
        ranking = self._rerank(query, pool, top_k)
        end = time.perf_counter()
        return self._finish(query, pool, ranking, top_k, _timings(start, middle, end))

    def rerank(self, query: str, candidates: Sequence[Any], top_k: int = 5) -> PipelineResponse:
        """Stage 2 only, on candidates from any source: Candidates, dicts with "text", or strings."""
        _check_sizes(len(candidates) or 1, top_k)
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query is empty: give some words to search for")
        start = time.perf_counter()
        ranking = self._rerank(query, candidates, top_k)
        end = time.perf_counter()
        return self._finish(query, candidates, ranking, top_k, _timings(start, start, end))

    async def asearch(
        self,
        query: str,
        candidates: int = 50,
        top_k: int = 5,
        filters: Filters | Mapping[str, Any] | None = None,
        mode: Mode | None = None,
    ) -> PipelineResponse:
        """``search`` without blocking the event loop (both stages run in worker threads)."""
        _check_sizes(candidates, top_k)
        start = time.perf_counter()
        pool = await asyncio.to_thread(self._recall, query, candidates, filters, mode)
        middle = time.perf_counter()
        ranking = await asyncio.to_thread(self._rerank, query, pool, top_k)
        end = time.perf_counter()
        return self._finish(query, pool, ranking, top_k, _timings(start, middle, end))

    async def arerank(self, query: str, candidates: Sequence[Any], top_k: int = 5) -> PipelineResponse:
        """``rerank`` in a worker thread."""
        return await asyncio.to_thread(self.rerank, query, candidates, top_k)


def _check_sizes(candidates: int, top_k: int) -> None:
    if candidates < 1 or top_k < 1:
        raise ValueError(f"candidates and top_k must be at least 1 (got {candidates} and {top_k})")


def _timings(start: float, middle: float, end: float) -> dict[str, float]:
    return {
        "stage1_ms": (middle - start) * 1000,
        "rerank_ms": (end - middle) * 1000,
        "total_ms": (end - start) * 1000,
    }
