"""On-disk caches that make a second evaluation run cheap: built indexes and reranker scores.

Everything lives under ``$WINNOW_CACHE_DIR/eval`` (default ``~/.cache/winnow/eval``). Scores are keyed by
the scorer's identity (model files, max_length, dtype), the query text and a hash of the document
text, so a changed model or a changed document is scored afresh rather than served stale.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from winnow.paths import cache_root


def cache_dir() -> Path:
    """The evaluation cache folder: $WINNOW_CACHE_DIR/eval, else ~/.cache/winnow/eval."""
    return cache_root() / "eval"


def _pair_key(query: str, text: str) -> str:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(query.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class DiskScoreCache:
    """Scores of (query, document) pairs per scorer, in one SQLite file shared by every run."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or cache_dir() / "scores.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS scores "
            "(scorer TEXT, pair TEXT, score REAL, PRIMARY KEY (scorer, pair))"
        )
        self.hits = 0
        self.misses = 0

    def get(self, scorer: str, query: str, texts: Sequence[str]) -> list[float | None]:
        """Cached scores in input order; None where a pair has not been scored yet."""
        keys = [_pair_key(query, text) for text in texts]
        found: dict[str, float] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT pair, score FROM scores WHERE scorer = ? AND pair IN ({marks})", [scorer, *chunk]
            )
            found.update(rows.fetchall())
        out = [found.get(key) for key in keys]
        hits = sum(value is not None for value in out)
        self.hits += hits
        self.misses += len(out) - hits
        return out

    def put(self, scorer: str, query: str, texts: Sequence[str], scores: np.ndarray) -> None:
        rows = [(scorer, _pair_key(query, t), float(s)) for t, s in zip(texts, scores, strict=True)]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()
