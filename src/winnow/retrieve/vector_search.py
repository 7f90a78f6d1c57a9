"""Nearest-neighbour search over unit vectors: exact for small indexes, HNSW (usearch) above a threshold.

HNSW only proposes candidates: it is asked for more than k (at least ``HNSW_CANDIDATES``) and they are
rescored exactly against the stored float32 vectors, so its f16 distances and near-ties never reorder the
top k, and the scores fused with BM25 are the same as exact search would give. The graph is built on
one thread, so the same vectors always give the same graph (and the same results).

Filters are applied inside the search: exact search scores only the allowed rows, and HNSW search
widens its beam until it has k allowed hits (falling back to exact search over the allowed rows when
they are few), so a filter never empties a result list that a post-filter would have truncated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from winnow.retrieve.bm25 import top_k

HNSW_CANDIDATES = 128  # the search beam, and the fewest candidates taken from the graph for exact rescoring


class VectorIndex:
    """Vectors by row position (float32, unit length), with an optional usearch HNSW graph over them."""

    def __init__(self, vectors: np.ndarray, hnsw=None):
        self.vectors = vectors
        self.hnsw = hnsw

    def __len__(self) -> int:
        return len(self.vectors)

    @classmethod
    def build(cls, vectors: np.ndarray, hnsw_threshold: int) -> VectorIndex:
        hnsw = None
        if len(vectors) >= hnsw_threshold:
            from usearch.index import Index as UsearchIndex

            hnsw = UsearchIndex(
                ndim=vectors.shape[1],
                metric="ip",
                dtype="f16",
                connectivity=16,
                expansion_add=128,
                expansion_search=HNSW_CANDIDATES,
            )
            hnsw.add(np.arange(len(vectors), dtype=np.uint64), vectors, log=False, threads=1)
        return cls(vectors, hnsw)

    def save(self, folder: Path) -> None:
        np.save(folder / "vectors.npy", self.vectors)
        if self.hnsw is not None:
            self.hnsw.save(str(folder / "hnsw.usearch"))

    @classmethod
    def load(cls, folder: Path) -> VectorIndex:
        vectors = np.load(folder / "vectors.npy", mmap_mode="r")
        hnsw = None
        if (folder / "hnsw.usearch").is_file():
            from usearch.index import Index as UsearchIndex

            hnsw = UsearchIndex.restore(str(folder / "hnsw.usearch"), view=True)
        return cls(vectors, hnsw)

    def search(
        self, query: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (positions, cosine scores), best first; ``allowed`` is a boolean row mask."""
        n = len(self.vectors)
        k = min(k, n)
        if k == 0:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if allowed is None:
            if self.hnsw is None:
                return top_k(self.vectors @ query, k)
            return self._hnsw(query, k, None)
        rows = np.flatnonzero(allowed)
        if self.hnsw is None or len(rows) <= max(4 * k, n // 20):
            positions, scores = top_k(np.asarray(self.vectors[rows] @ query), min(k, len(rows)))
            return rows[positions], scores
        return self._hnsw(query, k, allowed)

    def _hnsw(self, query: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.vectors)
        wanted = min(n, max(HNSW_CANDIDATES, k if allowed is None else k * 4))
        while True:
            keys = np.asarray(self.hnsw.search(query.astype(np.float32), wanted).keys, dtype=np.int64)
            if allowed is not None:
                keys = keys[allowed[keys]]
            if len(keys) >= k or wanted >= n:
                positions, scores = top_k(np.asarray(self.vectors[keys] @ query), min(k, len(keys)))
                return keys[positions], scores
            wanted = min(n, wanted * 4)
