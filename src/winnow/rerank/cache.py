"""A bounded LRU cache of scores, so candidates seen again (retries, pagination, overlapping
result lists) cost nothing."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CachedScore:
    score: float
    probability: float
    truncated: bool
    span: tuple[int, int] | None


class ScoreCache:
    """Least-recently-used scores keyed by (model, query, document content); thread-safe.

    One cache may be shared by several rerankers: the model key keeps their scores apart.
    """

    def __init__(self, max_entries: int = 20_000) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, not {max_entries}")
        self.max_entries = max_entries
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str, bytes], CachedScore] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(model_key: str, query: str, text: str) -> tuple[str, str, bytes]:
        """The cache key; documents are hashed so the cache holds no copy of their text."""
        return (
            model_key,
            query,
            hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest(),
        )

    def get(self, key: tuple[str, str, bytes]) -> CachedScore | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return entry

    def put(self, key: tuple[str, str, bytes], value: CachedScore) -> None:
        if self.max_entries == 0:
            return
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def stats(self) -> dict[str, int]:
        """Counters a service can export: entries, hits, misses."""
        return {"entries": len(self._entries), "hits": self.hits, "misses": self.misses}
