"""What a rerank returns: one result per document, and the ranking that holds them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload


@dataclass(frozen=True, slots=True)
class RerankResult:
    """One reranked document.

    ``index`` is its position in the caller's list; ``score`` the model's raw logit; ``probability``
    the model's activation of it (sigmoid unless the model says otherwise); ``document`` exactly what
    the caller passed. ``span`` is the (start, end) character range of the best window when long
    documents are scored in windows, else None. ``truncated`` says whether the model saw less than
    the whole document.
    """

    index: int
    score: float
    probability: float
    document: Any
    text: str
    truncated: bool = False
    span: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class Ranking(Sequence[RerankResult]):
    """Results best first, plus what happened on the way: truncation and cache use."""

    results: list[RerankResult]
    truncated: int = 0
    cache_hits: int = 0
    model: str = ""

    @overload
    def __getitem__(self, item: int) -> RerankResult: ...
    @overload
    def __getitem__(self, item: slice) -> list[RerankResult]: ...
    def __getitem__(self, item: int | slice) -> RerankResult | list[RerankResult]:
        return self.results[item]

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[RerankResult]:
        return iter(self.results)
