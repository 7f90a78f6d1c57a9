"""Accept the document shapes users already have (strings, dicts, objects) and find the text to score."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TEXT_KEYS = ("text", "content", "page_content")


def document_text(document: Any, index: int) -> str:
    """The text of one document: a string, a dict with a text field, or an object with a text attribute.

    ``index`` is the document's position, so the error says which one is wrong.
    """
    if isinstance(document, str):
        return document
    if document is None:
        raise TypeError(f"document {index} is None; expected a string or a dict/object with text")
    if isinstance(document, dict):
        for key in TEXT_KEYS:
            value = document.get(key)
            if isinstance(value, str):
                return value
        raise TypeError(
            f"document {index} is a dict without a string field {' / '.join(TEXT_KEYS)} "
            f"(its keys: {', '.join(map(str, document)) or 'none'})"
        )
    for key in TEXT_KEYS:
        value = getattr(document, key, None)
        if isinstance(value, str):
            return value
    raise TypeError(
        f"document {index} is a {type(document).__name__} with no text; "
        f"expected a string, or a dict/object with a string {' / '.join(TEXT_KEYS)}"
    )


def document_texts(documents: Sequence[Any]) -> list[str]:
    """Texts of every document, checking the container too (a bare string is not a list of documents)."""
    if isinstance(documents, str | bytes) or not isinstance(documents, Sequence):
        raise TypeError(
            f"documents must be a list of documents, not {type(documents).__name__}; "
            "wrap a single document in a list"
        )
    return [document_text(document, index) for index, document in enumerate(documents)]


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
