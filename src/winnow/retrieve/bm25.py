"""Lexical recall with bm25s: English stopwords and the Snowball (PyStemmer) stemmer by default."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import bm25s
    import Stemmer


def _stemmer(language: str | None) -> Stemmer.Stemmer | None:
    import Stemmer

    return Stemmer.Stemmer(language) if language else None


class BM25Index:
    """A bm25s index over chunk texts, searched by position (row i = the i-th text it was built from)."""

    def __init__(self, retriever: bm25s.BM25, language: str | None = "english", stopwords: str | None = "en"):
        self.retriever = retriever
        self.language = language
        self.stopwords = stopwords
        self._stem = _stemmer(language)
        self._vocab: dict[str, int] = retriever.vocab_dict or {}

    @classmethod
    def build(
        cls,
        texts: list[str],
        k1: float = 1.2,
        b: float = 0.75,
        language: str | None = "english",
        stopwords: str | None = "en",
    ) -> BM25Index:
        import bm25s  # with numba and scipy, ~1 s to import: only when BM25 is used

        tokens = bm25s.tokenize(texts, stopwords=stopwords, stemmer=_stemmer(language), show_progress=False)
        retriever = bm25s.BM25(k1=k1, b=b)
        retriever.index(tokens, show_progress=False)
        return cls(retriever, language, stopwords)

    def save(self, folder: Path) -> None:
        self.retriever.save(str(folder))

    @classmethod
    def load(cls, folder: Path, language: str | None = "english", stopwords: str | None = "en") -> BM25Index:
        import bm25s

        return cls(bm25s.BM25.load(str(folder), mmap=True), language, stopwords)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every row for ``query`` (0 where no query term occurs)."""
        import bm25s

        terms = bm25s.tokenize(
            [query], stopwords=self.stopwords, stemmer=self._stem, return_ids=False, show_progress=False
        )[0]
        known = [t for t in terms if t in self._vocab]
        n = int(self.retriever.scores["num_docs"])
        if not known:
            return np.zeros(n, dtype=np.float32)
        return np.asarray(self.retriever.get_scores(known), dtype=np.float32)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (positions, scores) among rows with a positive score; ``allowed`` is a boolean row mask."""
        scores = self.scores(query)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        return top_k(scores, k, positive_only=True)


def top_k(scores: np.ndarray, k: int, positive_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Positions and scores of the k highest scores, best first (ties broken by position)."""
    candidates = np.flatnonzero(scores > 0) if positive_only else np.arange(len(scores))
    if len(candidates) > k:
        part = np.argpartition(-scores[candidates], k - 1)[:k]
        candidates = candidates[part]
    order = np.lexsort((candidates, -scores[candidates]))
    chosen = candidates[order]
    return chosen, scores[chosen]
