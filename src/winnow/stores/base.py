"""What Winnow needs from any store to feed its reranker: one method that returns Candidates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from winnow.records import Candidate


@runtime_checkable
class CandidateSource(Protocol):
    """Anything whose ``search(query, k, filters)`` returns Candidates best first can be stage 1."""

    def search(
        self, query: str, k: int = 50, filters: Mapping[str, Any] | None = None
    ) -> list[Candidate]: ...
