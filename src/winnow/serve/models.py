"""A served model: a Reranker's tokenizer, backend and score cache behind its inference worker.

Requests are tokenized in worker threads (in parallel with the model), pairs the Reranker's bounded
score cache already holds are answered from it, the rest go through the model's ``BatchWorker``, and
scores come back in the caller's order. ``BatchedReranker`` offers the same thing with ``Reranker``'s
interface, so ``Pipeline`` and ``winnow.answer`` share the batching, and a request that times out
cancels the scoring its pipeline thread asked for.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np

from winnow.models.tokenizer import Tokenizer
from winnow.rerank.cache import CachedScore, ScoreCache
from winnow.rerank.encoding import CHARS_PER_TOKEN_CAP, encode_pairs
from winnow.rerank.inputs import check_query, check_top_k, document_texts
from winnow.rerank.reranker import split_logits
from winnow.rerank.results import Ranking, RerankResult
from winnow.serve.batching import BatchWorker, EncodedPairs
from winnow.serve.metrics import ServeMetrics

Direction = Literal["right", "left"]
T = TypeVar("T")


class ScoringAbandoned(RuntimeError):
    """The request behind a pipeline run stopped waiting (its deadline passed): the run ends here."""


ABANDONED = "the request stopped waiting; its work was dropped"


@dataclass(frozen=True, slots=True)
class Scored:
    """Per document, in input order: raw logit, probability, and whether it was cut."""

    scores: np.ndarray
    probabilities: np.ndarray
    truncated: list[bool]

    def order(self) -> list[int]:
        """Indices best first; ties keep input order, as ``Reranker.rerank`` does."""
        return sorted(range(len(self.scores)), key=lambda i: self.scores[i], reverse=True)


def _cut_documents(
    tokenizer: Tokenizer, texts: list[str], keep: int, direction: Direction
) -> tuple[list[str], list[bool]]:
    """Each text cut to its first (``right``) or last (``left``) ``keep`` tokens, at token boundaries."""
    char_cap = keep * CHARS_PER_TOKEN_CAP
    capped = [text[-char_cap:] if direction == "left" else text[:char_cap] for text in texts]
    offsets = tokenizer.offsets(capped)
    cut, truncated = [], []
    for text, short, spans in zip(texts, capped, offsets, strict=True):
        if len(spans) <= keep:
            cut.append(short)
        elif direction == "left":
            cut.append(short[spans[-keep][0] :])
        else:
            cut.append(short[: spans[keep - 1][1]])
        truncated.append(len(spans) > keep or len(short) < len(text))
    return cut, truncated


def encode_request(
    reranker,
    queries: list[str],
    texts: list[str],
    max_tokens_per_doc: int | None = None,
    direction: Direction = "right",
) -> tuple[EncodedPairs, list[bool]]:
    """Model inputs of (query, text) pairs and which texts were cut.

    Documents keep at most ``max_tokens_per_doc`` tokens (Cohere's option) and always fit the model's
    ``max_length`` with the query; ``direction="left"`` keeps their end instead of their start (TEI's
    ``truncation_direction``). Queries are never cut: one too long is a ValueError.
    """
    tokenizer = reranker.tokenizer
    cut = list(texts)
    truncated = [False] * len(texts)
    if direction == "left" or max_tokens_per_doc is not None:
        special = tokenizer.num_special_tokens(pair=True)
        for query in set(queries):
            rows = [i for i, q in enumerate(queries) if q == query]
            query_tokens = tokenizer.count(query)
            keep = max(1, reranker.max_length - query_tokens - special)
            if max_tokens_per_doc is not None:
                keep = min(keep, max_tokens_per_doc)
            pieces, flags = _cut_documents(tokenizer, [texts[i] for i in rows], keep, direction)
            for i, piece, flag in zip(rows, pieces, flags, strict=True):
                cut[i], truncated[i] = piece, flag
    encoded = encode_pairs(tokenizer, queries, cut, reranker.max_length)
    flags = [a or b for a, b in zip(truncated, encoded.truncated, strict=True)]
    return EncodedPairs(encoded.input_ids, encoded.token_type_ids), flags


CacheKey = tuple[str, str, bytes]


@dataclass(slots=True)
class _Lookup:
    """A request's pairs after the cache: what it held, and the model inputs of the unique pairs it
    lacked (``missing`` maps each such pair's key to its row in ``encoded``)."""

    keys: list[CacheKey]
    found: list[CachedScore | None]
    missing: dict[CacheKey, int]
    encoded: EncodedPairs
    truncated: list[bool]


class ServedModel:
    """One reranker and its worker, under the names a request may use for it (``worker_class``: how its
    requests are batched; ``winnow serve --ray``'s replicas batch through Ray Serve).

    Scores go through the Reranker's own ``ScoreCache`` (bounded LRU, thread-safe; ``cache=0`` turns
    it off): a pair seen before is answered without a forward pass, with the same score."""

    def __init__(
        self,
        name: str,
        reranker,
        max_batch_tokens: int,
        max_wait_ms: float,
        metrics: ServeMetrics,
        worker_class: type[BatchWorker] = BatchWorker,
    ):
        self.name = name
        self.reranker = reranker
        self.metrics = metrics
        self.cache: ScoreCache = reranker.cache
        # The Reranker's own key (model, backend, number format, max_length, ...) in a namespace of the
        # service's, whose pairs are cut as the request says (``_lookup`` adds how).
        self._cache_prefix = f"serve|{reranker.cache_model_key}"
        self.worker = worker_class(
            reranker.backend,
            reranker.tokenizer.pad_token_id,
            max_batch_tokens,
            max_wait_ms,
            metrics,
            model_name=name,
        )

    @property
    def aliases(self) -> set[str]:
        """The name as given, and a local directory's last part (a request cannot know our paths)."""
        return {self.name, Path(self.name).name, str(self.reranker.model_name)}

    async def score(
        self,
        queries: list[str],
        texts: list[str],
        max_tokens_per_doc: int | None = None,
        direction: Direction = "right",
    ) -> Scored:
        started = time.perf_counter()
        lookup = await asyncio.to_thread(self._lookup, queries, texts, max_tokens_per_doc, direction)
        self.metrics.stage_seconds.labels("tokenize").observe(time.perf_counter() - started)
        logits = await self.worker.submit(lookup.encoded)
        raw, model_probabilities = split_logits(logits)
        fresh = {
            key: CachedScore(float(raw[row]), float(model_probabilities[row]), lookup.truncated[row], None)
            for key, row in lookup.missing.items()
        }
        for key, entry in fresh.items():
            self.cache.put(key, entry)
        entries = [found or fresh[key] for found, key in zip(lookup.found, lookup.keys, strict=True)]
        hits = len(entries) - lookup.found.count(None)
        self.metrics.cache_hits.labels(self.name).inc(hits)
        self.metrics.cache_misses.labels(self.name).inc(len(entries) - hits)
        truncated = [entry.truncated for entry in entries]
        self.metrics.truncated_documents.inc(sum(truncated))
        scores = np.array([entry.score for entry in entries], dtype=np.float32)
        probabilities = np.array([entry.probability for entry in entries], dtype=np.float32)
        return Scored(scores, self.reranker.probabilities(scores, probabilities), truncated)

    def _lookup(
        self, queries: list[str], texts: list[str], max_tokens_per_doc: int | None, direction: Direction
    ) -> _Lookup:
        """Cached scores of the pairs, and model inputs for the unique pairs the cache does not hold."""
        prefix = f"{self._cache_prefix}|{max_tokens_per_doc}|{direction}"
        keys = [ScoreCache.key(prefix, query, text) for query, text in zip(queries, texts, strict=True)]
        found = [self.cache.get(key) for key in keys] if self.cache.max_entries else [None] * len(keys)
        first_rows: dict[CacheKey, int] = {}  # the same pair twice in one request runs once
        for i, key in enumerate(keys):
            if found[i] is None:
                first_rows.setdefault(key, i)
        missing = {key: row for row, key in enumerate(first_rows)}
        rows = list(first_rows.values())
        if not rows:
            return _Lookup(keys, found, missing, EncodedPairs([], None), [])
        encoded, truncated = encode_request(
            self.reranker, [queries[i] for i in rows], [texts[i] for i in rows], max_tokens_per_doc, direction
        )
        return _Lookup(keys, found, missing, encoded, truncated)


class BatchedReranker:
    """``Reranker``'s interface (``rerank``, ``score``, ``tokenizer``) over a served model's worker.

    Called from worker threads (where ``Pipeline`` and ``winnow.answer`` run), it hands the pairs to
    the event loop's batching worker and blocks that thread until their scores come back. A run
    started with ``run`` is abandoned when its caller stops waiting: the scoring in progress is
    cancelled (its queued pairs never reach the model, its remaining passes are skipped) and the
    thread's next call raises ``ScoringAbandoned``, so the thread ends instead of working on.
    """

    def __init__(self, model: ServedModel, loop: asyncio.AbstractEventLoop) -> None:
        self.model = model
        self.loop = loop
        self.tokenizer = model.reranker.tokenizer
        self.model_name = model.name
        self._lock = threading.Lock()
        self._abandoned = False
        self._pending: concurrent.futures.Future[Scored] | None = None

    async def run(self, work: Callable[..., T], *args: Any) -> T:
        """``work(*args)`` in a worker thread; if the caller is cancelled (its deadline passed), the
        run is abandoned."""
        try:
            return await asyncio.to_thread(work, *args)
        except asyncio.CancelledError:
            self.abandon()
            raise

    def abandon(self) -> None:
        """Cancel the scoring in progress; every later call raises ``ScoringAbandoned``."""
        with self._lock:
            self._abandoned = True
            if self._pending is not None:
                self._pending.cancel()

    def check(self) -> None:
        """Raise ``ScoringAbandoned`` once the run is abandoned (so its thread stops between steps)."""
        if self._abandoned:
            raise ScoringAbandoned(ABANDONED)

    def _score(self, queries: list[str], texts: list[str]) -> Scored:
        with self._lock:
            self.check()
            pending = asyncio.run_coroutine_threadsafe(self.model.score(queries, texts), self.loop)
            self._pending = pending
        try:
            return pending.result()
        except concurrent.futures.CancelledError:
            raise ScoringAbandoned(ABANDONED) from None
        finally:
            with self._lock:
                self._pending = None

    def rerank(self, query: str, documents: Sequence[Any], top_k: int | None = None) -> Ranking:
        check_query(query)
        texts = document_texts(documents)
        check_top_k(top_k)
        scored = self._score([query] * len(texts), texts)
        order = scored.order()[:top_k] if top_k is not None else scored.order()
        results = [
            RerankResult(
                index=i,
                score=float(scored.scores[i]),
                probability=float(scored.probabilities[i]),
                document=documents[i],
                text=texts[i],
                truncated=scored.truncated[i],
            )
            for i in order
        ]
        return Ranking(results=results, truncated=sum(scored.truncated), model=self.model_name)

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        for pair in pairs:
            check_query(pair[0])
        texts = document_texts([pair[1] for pair in pairs])
        return self._score([pair[0] for pair in pairs], texts).scores
