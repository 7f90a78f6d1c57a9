"""Stage 2: a cross-encoder reads the query and each candidate together and rescores the candidates."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from winnow.models import DEFAULT_RERANKER, resolve_model
from winnow.models.batching import pad_batch, token_budget_batches
from winnow.models.tokenizer import Tokenizer
from winnow.rerank.backends import choose_backend, load_backend
from winnow.rerank.cache import CachedScore, ScoreCache
from winnow.rerank.calibration import Calibrator, find_calibrator
from winnow.rerank.encoding import encode_pairs
from winnow.rerank.hosted import hosted_provider
from winnow.rerank.hosted.reranker import HostedAPI
from winnow.rerank.inputs import check_query, check_top_k, document_texts
from winnow.rerank.results import Ranking, RerankResult

WINDOW_AGGREGATES = ("max", "mean")

logger = logging.getLogger("winnow.rerank")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def split_logits(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Raw score and the model's own probability per row of logits (rows x labels): one logit and its
    sigmoid, or for two-label models the positive label's logit and the softmax's positive share."""
    if logits.shape[1] == 1:
        return logits[:, 0], _sigmoid(logits[:, 0])
    return logits[:, 1], _sigmoid(logits[:, 1] - logits[:, 0])


class Reranker:
    """A cross-encoder reranker.

    >>> reranker = Reranker("winnow-minilm-l6")
    >>> ranking = reranker.rerank("what is bm25?", ["BM25 is a ranking function.", "Paris is in France."])
    >>> ranking[0].index
    0

    ``model`` is a short name, a Hugging Face id (downloaded on first use at ``revision`` unless
    HF_HUB_OFFLINE is set), or a local directory; "cohere:<model>", "voyage:<model>" or "jina:<model>"
    builds a hosted API reranker instead (``winnow.rerank.hosted``).
    ``backend`` is "auto" (the fastest one measured that ranks like fp32), "torch", "onnx", "onnx-int8"
    or "openvino";
    ``device`` and ``dtype`` (fp32 / bf16 / fp16) are picked from the hardware unless forced.
    ``max_length`` bounds query + document tokens; documents are cut to fit (never the query) and
    every cut is reported. With ``windows=True`` long documents are scored in overlapping windows
    instead, aggregated by ``window_aggregate``, and each result carries the best window's span.
    ``batch_tokens`` is the padded token budget of one forward pass.
    ``calibrator`` turns logits into probabilities; by default the model's saved calibration (see
    ``winnow calibrate``) when there is one, else the model's own sigmoid.
    """

    def __new__(cls, model: str | os.PathLike[str] = DEFAULT_RERANKER, *args: Any, **kwargs: Any) -> Reranker:
        """A "provider:model" name builds the hosted reranker, which has the same API."""
        if cls is Reranker and hosted_provider(model):
            cls = HostedReranker
        return super().__new__(cls)

    def __init__(
        self,
        model: str | os.PathLike[str] = DEFAULT_RERANKER,
        *,
        revision: str | None = None,
        backend: str = "auto",
        device: str | None = None,
        dtype: str | None = None,
        max_length: int = 512,
        batch_tokens: int | None = None,
        windows: bool = False,
        window_overlap: int = 64,
        max_windows: int = 32,
        window_aggregate: str = "max",
        cache: ScoreCache | int | None = 20_000,
        calibrator: Calibrator | None = None,
    ) -> None:
        if max_length < 16:
            raise ValueError(f"max_length must be at least 16 tokens, not {max_length}")
        if window_aggregate not in WINDOW_AGGREGATES:
            raise ValueError(f"window_aggregate must be one of {WINDOW_AGGREGATES}, not {window_aggregate!r}")
        if windows and not 0 <= window_overlap <= max_length // 4:
            raise ValueError(
                f"window_overlap must be in [0, max_length/4 = {max_length // 4}], not {window_overlap}"
            )
        self.model_dir: Path = resolve_model(model, revision=revision)
        self.model_name = os.fspath(model)
        self.backend_name, self.device, self.dtype = choose_backend(backend, device, dtype)

        self.tokenizer = Tokenizer.from_model(self.model_dir)
        self.max_length = min(max_length, self.tokenizer.model_max_length)
        self.backend = load_backend(self.backend_name, self.model_dir, self.device, self.dtype)
        self.batch_tokens = batch_tokens or (2048 if self.device == "cpu" else 32_768)
        self.windows = windows
        self.window_overlap = window_overlap
        self.max_windows = max_windows
        self.window_aggregate = window_aggregate
        self.cache = cache if isinstance(cache, ScoreCache) else ScoreCache(cache or 0)
        found = find_calibrator(self.model_dir) if calibrator is None else None
        self.calibrator: Calibrator | None = calibrator or (found[0] if found else None)
        # What a cached score depends on besides the pair: the service builds its keys on it too.
        self.cache_model_key = "|".join(
            map(
                str,
                (
                    self.model_dir.resolve(),
                    self.backend_name,
                    self.dtype,
                    self.max_length,
                    windows,
                    window_overlap,
                    max_windows,
                    window_aggregate,
                ),
            )
        )

    def __repr__(self) -> str:
        return (
            f"Reranker(model={self.model_name!r}, backend={self.backend_name!r}, device={self.device!r}, "
            f"dtype={self.dtype!r}, max_length={self.max_length})"
        )

    def rerank(self, query: str, documents: Sequence[Any], top_k: int | None = None) -> Ranking:
        """Rank ``documents`` by relevance to ``query``, best first.

        Documents are strings, dicts with a "text" field, or objects with a ``text`` attribute; each
        result gives back the document untouched with its input ``index``. ``top_k`` keeps the best
        k (None keeps all; a k larger than the list is clamped to it; k <= 0 is an error).
        """
        check_query(query)
        texts = document_texts(documents)
        check_top_k(top_k)
        scored, hits = self._scores(query, texts)
        order = sorted(range(len(texts)), key=lambda i: scored[i].score, reverse=True)
        if top_k is not None:
            order = order[:top_k]
        results = [
            RerankResult(
                index=i,
                score=scored[i].score,
                probability=self._probability(scored[i]),
                document=documents[i],
                text=texts[i],
                truncated=scored[i].truncated,
                span=scored[i].span,
            )
            for i in order
        ]
        truncated = sum(entry.truncated for entry in scored)
        if truncated:
            logger.info(
                "%d of %d documents were longer than max_length=%d tokens and were truncated",
                truncated,
                len(texts),
                self.max_length,
            )
        return Ranking(results=results, truncated=truncated, cache_hits=hits, model=self.model_name)

    async def arerank(self, query: str, documents: Sequence[Any], top_k: int | None = None) -> Ranking:
        """``rerank`` in a worker thread, so an event loop keeps serving while the model runs."""
        return await asyncio.to_thread(self.rerank, query, documents, top_k)

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw scores (logits) of (query, document) pairs, in input order; no cache, no sorting."""
        if isinstance(pairs, str) or not isinstance(pairs, Sequence):
            raise TypeError(f"pairs must be a list of (query, document) tuples, not {type(pairs).__name__}")
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        for index, pair in enumerate(pairs):
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TypeError(f"pair {index} must be a (query, document) tuple, not {pair!r:.80}")
            check_query(pair[0])
        texts = document_texts([pair[1] for pair in pairs])
        logits, _, _ = self._forward([pair[0] for pair in pairs], texts)
        return logits

    def _forward(
        self, queries: list[str], texts: list[str]
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[bool, tuple[int, int] | None]]]:
        """Score pairs: (logit, probability, (truncated, best span)) per pair, in input order."""
        encoded = encode_pairs(
            self.tokenizer,
            queries,
            texts,
            self.max_length,
            windows=self.windows,
            window_overlap=self.window_overlap,
            max_windows=self.max_windows,
        )
        lengths = [len(ids) for ids in encoded.input_ids]
        window_logits = np.zeros((len(lengths), self.backend.num_labels), dtype=np.float32)
        pad_id = self.tokenizer.pad_token_id
        for batch in token_budget_batches(lengths, self.batch_tokens):
            types = None if encoded.token_type_ids is None else [encoded.token_type_ids[i] for i in batch]
            inputs = pad_batch([encoded.input_ids[i] for i in batch], types, pad_id)
            window_logits[batch] = self.backend(inputs)
        window_scores, window_probs = split_logits(window_logits)
        return self._aggregate(encoded.owner, encoded.spans, encoded.truncated, window_scores, window_probs)

    def _aggregate(self, owner, spans, truncated, window_scores, window_probs):
        """Fold window scores into one score per pair (max or mean) and keep the best window's span."""
        n_pairs = len(truncated)
        if not self.windows:
            return window_scores, window_probs, [(flag, None) for flag in truncated]
        owner = np.asarray(owner)
        scores = np.zeros(n_pairs, dtype=np.float32)
        probs = np.zeros(n_pairs, dtype=np.float32)
        extras = []
        for pair in range(n_pairs):
            rows = np.flatnonzero(owner == pair)
            best = rows[np.argmax(window_scores[rows])]
            if self.window_aggregate == "max":
                scores[pair], probs[pair] = window_scores[best], window_probs[best]
            else:
                scores[pair], probs[pair] = window_scores[rows].mean(), window_probs[rows].mean()
            extras.append((truncated[pair], spans[best]))
        return scores, probs, extras

    def _probability(self, entry: CachedScore) -> float:
        return float(self.probabilities(np.array([entry.score]), np.array([entry.probability]))[0])

    def probabilities(self, scores: np.ndarray, model_probabilities: np.ndarray) -> np.ndarray:
        """What callers see as probabilities: the calibrator's when there is one, else the model's own."""
        if self.calibrator is None or not len(scores):
            return model_probabilities
        return np.asarray(self.calibrator.transform(scores), dtype=np.float32)

    def _scores(self, query: str, texts: list[str]) -> tuple[list[CachedScore], int]:
        """Scores for every text, from the cache where possible and the model for the rest,
        and how many came from the cache."""
        keys = [ScoreCache.key(self.cache_model_key, query, text) for text in texts]
        scored = [self.cache.get(key) for key in keys]
        missing = [i for i, entry in enumerate(scored) if entry is None]
        # The same text twice in one request is scored once.
        unique = list(dict.fromkeys(texts[i] for i in missing))
        if unique:
            logits, probs, extras = self._forward([query] * len(unique), unique)
            fresh = {
                text: CachedScore(float(logits[j]), float(probs[j]), extras[j][0], extras[j][1])
                for j, text in enumerate(unique)
            }
            for i in missing:
                self.cache.put(keys[i], fresh[texts[i]])
                scored[i] = fresh[texts[i]]
        return scored, len(texts) - len(missing)  # type: ignore[return-value]


class HostedReranker(HostedAPI, Reranker):
    """A hosted rerank API (Cohere, Voyage AI, Jina AI) as a ``Reranker``: ``Reranker("cohere:rerank-v3.5")``
    builds one. ``HostedAPI`` (``winnow.rerank.hosted``) scores; ``Reranker`` ranks, caches and reports."""
