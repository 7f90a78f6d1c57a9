"""Two-stage retrieval in one call: stage-1 recall from an Index, then cross-encoder reranking.

``Pipeline.rerank`` takes candidates from anywhere (a list of dicts from Qdrant, Pinecone, pgvector...),
so a team that already runs a vector database keeps it and only adds stage 2.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from winnow.records import Candidate, as_candidate
from winnow.retrieve.filters import Filters
from winnow.retrieve.index import Index, Mode
from winnow.signals.abstention import Abstention, check_threshold
from winnow.signals.combine import Embed, SignalInput, Signals, combine
from winnow.stores.base import CandidateSource

if TYPE_CHECKING:
    from winnow.rerank import Cascade, Reranker


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """One final result: where stage 1 put it, what the reranker said, and what it is.

    ``rank`` is the final 1-based rank; ``stage1_rank``/``stage1_score`` come from recall (for external
    candidates, read by ``winnow.records.as_candidate``: their ``rank`` field, else their position in
    the list given, and their ``score`` field if any). ``score`` and ``probability`` are the
    reranker's logit and (calibrated) probability, None when reranking was skipped. ``final_score`` is
    what the order rests on: the probability, or with signals configured their weighted blend;
    ``components`` holds every part of it (relevance, freshness, authority, and mmr / redundancy when
    diversity is on) so a user can see why a result ranked where it did. ``updated_at`` and
    ``authority`` are the document's, which the signals read; ``metadata`` is its user fields.
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
    components: dict[str, float] = field(default_factory=dict)
    final_score: float | None = None
    updated_at: datetime | str | float | None = None
    authority: float | None = None


@dataclass(frozen=True, slots=True)
class PipelineResponse(Sequence[PipelineResult]):
    """Results best first, plus the milliseconds each stage took (``timings``: stage1, rerank, total;
    signals too when signals or a minimum confidence are configured).

    ``confident`` is False when a minimum confidence was set and no candidate reached it: ``results``
    is then empty and ``abstention`` holds the best candidate and its probability. ``date_issues``
    counts documents whose date was missing or malformed, so the freshness policy decided for them.
    """

    query: str
    results: list[PipelineResult]
    timings: dict[str, float] = field(default_factory=dict)
    candidates: int = 0
    confident: bool = True
    abstention: Abstention | None = None
    date_issues: dict[str, int] = field(default_factory=dict)

    def __getitem__(self, item):  # type: ignore[override]
        return self.results[item]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[PipelineResult]:
        return iter(self.results)


class Pipeline:
    """Stage 1 (an ``Index``, or any ``CandidateSource`` such as ``QdrantStore``) then stage 2 (``reranker``).

    Either may be None; ``reranker`` may be a ``Cascade`` (a small model prunes, the full one reranks).
    Without an index only ``rerank`` works (bring your own candidates); without a reranker results
    keep their stage-1 order (the ``--no-rerank`` view). ``signals`` blends freshness, authority and
    diversity into the order (the default: pure relevance). ``min_confidence`` in [0, 1] makes the
    pipeline abstain when no candidate's probability reaches it.
    """

    def __init__(
        self,
        index: Index | CandidateSource | None,
        reranker: Reranker | Cascade | None = None,
        mode: Mode = "hybrid",
        signals: Signals | None = None,
        min_confidence: float | None = None,
    ):
        self.index = index
        self.reranker = reranker
        self.mode = mode
        self.signals = signals
        self.min_confidence = None if min_confidence is None else check_threshold(min_confidence)
        if reranker is None and (min_confidence is not None or (signals is not None and signals.reorders)):
            raise ValueError(
                "signals and min_confidence work on the reranker's probabilities: give a reranker"
            )
        self._embed: Embed | None = None
        if signals is not None and signals.mmr_lambda < 1.0:
            self._embed = signals.embedder or (index.embedder.encode if isinstance(index, Index) else None)
            if self._embed is None:
                raise ValueError(
                    "mmr_lambda < 1 needs Signals(embedder=...) when the index is not a winnow Index"
                )

    def _recall(self, query: str, candidates: int, filters: Any, mode: Mode | None) -> list[Candidate]:
        if self.index is None:
            raise ValueError("this Pipeline has no index; use pipeline.rerank(query, candidates) instead")
        if isinstance(self.index, Index):
            return self.index.search(query, k=candidates, mode=mode or self.mode, filters=filters)
        return self.index.search(query, k=candidates, filters=filters)

    def _finish(
        self, query: str, pool: Sequence[Any], ranking: Any, top_k: int, timings: dict
    ) -> PipelineResponse:
        start = time.perf_counter()
        results = []
        if ranking is None:
            chosen = [(i, None, None) for i in range(min(top_k, len(pool)))]
        else:
            chosen = [(r.index, r.score, r.probability) for r in ranking]
        for rank, (i, score, probability) in enumerate(chosen, start=1):
            record = as_candidate(pool[i], i)
            relevance = {} if probability is None else {"relevance": probability}
            results.append(
                PipelineResult(
                    rank=rank,
                    stage1_rank=record.rank or i + 1,
                    stage1_score=record.score,
                    score=score,
                    probability=probability,
                    text=record.text,
                    doc_id=record.doc_id,
                    chunk_id=record.chunk_id,
                    title=record.title,
                    source=record.source,
                    span=record.span,
                    metadata=record.metadata,
                    candidate=pool[i],
                    components=relevance,
                    final_score=probability,
                    updated_at=record.updated_at,
                    authority=record.authority,
                )
            )
        abstention = self._abstention(results) if self.min_confidence is not None else None
        date_issues: dict[str, int] = {}
        if abstention is not None:
            results = []
        elif self.signals is not None and self.signals.reorders:
            results, date_issues = self._apply_signals(results, top_k)
        results = results[:top_k]
        if self.signals is not None or self.min_confidence is not None:
            spent = (time.perf_counter() - start) * 1000
            timings = {**timings, "signals_ms": spent, "total_ms": timings["total_ms"] + spent}
        return PipelineResponse(
            query=query,
            results=results,
            timings=timings,
            candidates=len(pool),
            confident=abstention is None,
            abstention=abstention,
            date_issues=date_issues,
        )

    def _abstention(self, results: list[PipelineResult]) -> Abstention | None:
        """An Abstention when no result's probability reaches min_confidence, else None."""
        threshold = float(self.min_confidence)  # type: ignore[arg-type]
        scored = [r for r in results if r.probability is not None]
        best = max(scored, key=lambda r: r.probability, default=None)  # type: ignore[arg-type, return-value]
        if best is not None and best.probability >= threshold:  # type: ignore[operator]
            return None
        return Abstention(None if best is None else best.probability, threshold, best)

    def _apply_signals(
        self, results: list[PipelineResult], top_k: int
    ) -> tuple[list[PipelineResult], dict[str, int]]:
        signals: Signals = self.signals  # type: ignore[assignment]
        items = [
            SignalInput(
                probability=float(r.probability),  # type: ignore[arg-type]
                text=r.text,
                doc_id=r.doc_id,
                source=r.source,
                updated_at=r.updated_at,
                authority=r.authority,
            )
            for r in results
        ]
        outcome = combine(items, signals, top_k, self._embed)
        kept = [
            replace(results[c.index], rank=rank, components=c.components, final_score=c.final_score)
            for rank, c in enumerate(outcome.results, start=1)
        ]
        dates = {"missing": outcome.dates.missing, "malformed": outcome.dates.malformed}
        return kept, dates if signals.freshness_weight > 0 else {}

    def _rerank(self, query: str, pool: Sequence[Any], top_k: int):
        if self.reranker is None or not pool:
            return None
        # Signals may promote any candidate, so they need the whole reranked pool, not the top k.
        keep = None if self.signals is not None and self.signals.reorders else top_k
        return self.reranker.rerank(query, list(pool), top_k=keep)

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
