"""Stage-2 scorers the harness can put under test: Winnow's cross-encoder Reranker, or a bi-encoder.

A scorer gives one number per (query, document text); higher is more relevant. The bi-encoder
scorer (cosine of normalised mean-pooled embeddings) is a cheap baseline "reranker": all-MiniLM-L6-v2
used this way lifts TREC DL 2019 BM25 top-100 from nDCG@10 0.5058 to 0.6425. ``CachedScorer`` puts
any scorer behind the on-disk score cache so a repeated grid never scores a pair twice.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from winnow.evaluation.cache import DiskScoreCache
from winnow.models.fingerprint import model_fingerprint
from winnow.models.fused_linear import runs_fused

BI_ENCODER_PREFIX = "bi-encoder:"


class Scorer(Protocol):
    name: str
    key: str

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        """Relevance of each text to the query, input order."""
        ...


def _precision(device: str, dtype: str) -> str:
    """The number format as it affects scores, for cache keys: fused bf16 layers compute differently."""
    return f"{dtype}-fused" if runs_fused(device, dtype) else dtype


class CrossEncoderScorer:
    """Winnow's ``Reranker`` (raw logits), with its own in-memory cache turned off so timings are real."""

    def __init__(
        self, model: str, max_length: int = 512, device: str | None = None, dtype: str | None = None
    ):
        from winnow.rerank import Reranker

        self.reranker = Reranker(model, device=device, dtype=dtype, max_length=max_length, cache=0)
        self.name = f"cross-encoder:{model}"
        self.key = "|".join(
            map(
                str,
                (
                    "cross",
                    model_fingerprint(self.reranker.model_dir),
                    self.reranker.backend_name,
                    _precision(self.reranker.device, self.reranker.dtype),
                    self.reranker.max_length,
                ),
            )
        )

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        return self.reranker.score([(query, text) for text in texts])


class BiEncoderScorer:
    """Cosine between the query's and each document's normalised embedding (stage 1's Embedder)."""

    def __init__(
        self, model: str, max_length: int = 256, device: str | None = None, dtype: str | None = None
    ):
        from winnow.retrieve.dense import Embedder

        self.embedder = Embedder(model, device=device, dtype=dtype, max_length=max_length)
        self.name = f"{BI_ENCODER_PREFIX}{model}"
        self.key = "|".join(
            map(
                str,
                (
                    "bi",
                    model_fingerprint(self.embedder.model_dir),
                    _precision(self.embedder.device, self.embedder.dtype),
                    self.embedder.max_length,
                ),
            )
        )

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        return self.embedder.encode(texts) @ self.embedder.encode_query(query)


class HostedScorer:
    """A hosted reranker, so ``winnow eval`` compares it with local ones on the same data."""

    def __init__(self, spec: str, max_length: int = 512) -> None:
        from winnow.rerank import Reranker
        from winnow.rerank.hosted.reranker import LOCAL_OPTIONS

        if max_length != LOCAL_OPTIONS["max_length"]:
            raise ValueError(f"--max-length applies to local cross-encoders; {spec} applies its own limits")
        self.reranker = Reranker(spec, cache=0)
        self.name = self.reranker.model_name
        self.key = f"hosted|{self.reranker.model_name}|{self.reranker.client.base_url}"

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        return self.reranker.score([(query, text) for text in texts])


def make_scorer(spec: str, max_length: int, device: str | None = None, dtype: str | None = None) -> Scorer:
    """``bi-encoder:<model>`` for a bi-encoder, ``cohere:`` / ``voyage:`` / ``jina:<model>`` for a hosted
    API, anything else (a name or path) for a cross-encoder."""
    from winnow.rerank.hosted import hosted_provider

    if hosted_provider(spec):
        return HostedScorer(spec, max_length)
    if spec.startswith(BI_ENCODER_PREFIX):
        return BiEncoderScorer(spec.removeprefix(BI_ENCODER_PREFIX), max_length, device, dtype)
    return CrossEncoderScorer(spec, max_length, device, dtype)


class CachedScorer:
    """A scorer behind the disk cache: only pairs never scored before reach the model."""

    def __init__(self, scorer: Scorer, cache: DiskScoreCache | None) -> None:
        self.scorer = scorer
        self.cache = cache

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        cached = self.cache.get(self.scorer.key, query, texts) if self.cache else [None] * len(texts)
        missing = [i for i, value in enumerate(cached) if value is None]
        scores = np.array([0.0 if value is None else value for value in cached], dtype=np.float32)
        if missing:
            fresh = np.asarray(self.scorer.score(query, [texts[i] for i in missing]), dtype=np.float32)
            scores[missing] = fresh
            if self.cache:
                self.cache.put(self.scorer.key, query, [texts[i] for i in missing], fresh)
        return scores
