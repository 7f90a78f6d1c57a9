"""Check what a caller hands the reranker: the query, the documents (read by the one adapter), top_k."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from winnow.records import as_candidate


def document_texts(documents: Sequence[Any]) -> list[str]:
    """Texts of every document, checking the container too (a bare string is not a list of documents).

    Each document is read by ``winnow.records.as_candidate``: a string, a dict or an object with a
    text / content / page_content field; a bad one is a one-line TypeError naming its position.
    """
    if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
        raise TypeError(
            f"documents must be a list of documents, not {type(documents).__name__}; "
            "wrap a single document in a list"
        )
    return [as_candidate(document, position).text for position, document in enumerate(documents)]


def check_query(query: Any) -> str:
    """The query, or a clear error when it is not a non-empty string."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a string, not {type(query).__name__}")
    if not query.strip():
        raise ValueError("query is empty; pass the question or search text to rank documents against")
    return query


def check_top_k(top_k: Any) -> None:
    """A clear error unless ``top_k`` is None (keep all) or a positive integer."""
    if top_k is not None and (not isinstance(top_k, int) or isinstance(top_k, bool) or top_k <= 0):
        raise ValueError(f"top_k must be a positive integer or None, not {top_k!r}")
