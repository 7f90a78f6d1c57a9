"""A served model: a Reranker's tokenizer and backend behind its inference worker.

Requests are tokenized in worker threads (in parallel with the model), their pairs go through the
model's ``BatchWorker``, and scores come back in the caller's order. ``BatchedReranker`` offers the
same thing with ``Reranker``'s interface, so ``Pipeline`` and ``winnow.answer`` share the batching.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from winnow.rerank.encoding import CHARS_PER_TOKEN_CAP, encode_pairs
from winnow.rerank.inputs import check_query, check_top_k, document_texts
from winnow.rerank.reranker import split_logits
from winnow.rerank.results import Ranking, RerankResult
from winnow.serve.batching import BatchWorker, EncodedPairs
from winnow.serve.metrics import ServeMetrics

Direction = Literal["right", "left"]


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
    tokenizer, texts: list[str], keep: int, direction: Direction
) -> tuple[list[str], list[bool]]:
    """Each text cut to its first (``right``) or last (``left``) ``keep`` tokens, at token boundaries."""
    char_cap = keep * CHARS_PER_TOKEN_CAP
    capped = [text[-char_cap:] if direction == "left" else text[:char_cap] for text in texts]
    encoded = tokenizer(capped, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offsets = encoded["offset_mapping"]
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
        special = tokenizer.num_special_tokens_to_add(pair=True)
        for query in set(queries):
            rows = [i for i, q in enumerate(queries) if q == query]
            query_tokens = len(tokenizer(query, add_special_tokens=False, verbose=False)["input_ids"])
            keep = max(1, reranker.max_length - query_tokens - special)
            if max_tokens_per_doc is not None:
                keep = min(keep, max_tokens_per_doc)
            pieces, flags = _cut_documents(tokenizer, [texts[i] for i in rows], keep, direction)
            for i, piece, flag in zip(rows, pieces, flags, strict=True):
                cut[i], truncated[i] = piece, flag
    encoded = encode_pairs(tokenizer, queries, cut, reranker.max_length)
    flags = [a or b for a, b in zip(truncated, encoded.truncated, strict=True)]
    return EncodedPairs(encoded.input_ids, encoded.token_type_ids), flags


def logits_to_scores(reranker, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores and probabilities, as ``Reranker`` computes them (its calibrator when it has one)."""
    scores, model_probabilities = split_logits(logits)
    return scores, reranker.probabilities(scores, model_probabilities)


class ServedModel:
    """One reranker and its worker, under the names a request may use for it (``worker_class``: how its
    requests are batched; ``winnow serve --ray``'s replicas batch through Ray Serve)."""

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
        self.worker = worker_class(
            reranker.backend,
            reranker.tokenizer.pad_token_id or 0,
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
        encoded, truncated = await asyncio.to_thread(
            encode_request, self.reranker, queries, texts, max_tokens_per_doc, direction
        )
        self.metrics.stage_seconds.labels("tokenize").observe(time.perf_counter() - started)
        self.metrics.truncated_documents.inc(sum(truncated))
        logits = await self.worker.submit(encoded)
        scores, probabilities = logits_to_scores(self.reranker, logits)
        return Scored(scores, probabilities, truncated)


class BatchedReranker:
    """``Reranker``'s interface (``rerank``, ``score``, ``tokenizer``) over a served model's worker.

    Called from worker threads (where ``Pipeline`` and ``winnow.answer`` run), it hands the pairs to
    the event loop's batching worker and blocks that thread until their scores come back.
    """

    def __init__(self, model: ServedModel, loop: asyncio.AbstractEventLoop) -> None:
        self.model = model
        self.loop = loop
        self.tokenizer = model.reranker.tokenizer
        self.model_name = model.name

    def _score(self, queries: list[str], texts: list[str]) -> Scored:
        return asyncio.run_coroutine_threadsafe(self.model.score(queries, texts), self.loop).result()

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
