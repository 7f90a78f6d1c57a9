"""The records every stage passes along: Document in, Chunk stored, Candidate out, and the ONE adapter.

Why one module: a field added here (a url, a language) reaches stage 1, stage 2, the signals, the
answer's context, the stores and the service at once. ``as_candidate`` is the only place that reads
caller input (a string, a dict with text / content / page_content, an object with those attributes)
into a Candidate; nothing else guesses at key names.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

TEXT_KEYS = ("text", "content", "page_content")
DEFAULT_AUTHORITY = 0.5


@dataclass(slots=True)
class Document:
    """One source document as ingested.

    ``id`` is the upsert key: adding a document with an id already in the index replaces it.
    ``authority`` is a weight in [0, 1] from the source-pattern rules (higher = more trusted);
    ``metadata`` holds any user fields and is what ``key = value`` filters match against.
    """

    id: str
    text: str
    title: str = ""
    source: str = ""
    updated_at: datetime | None = None
    authority: float = DEFAULT_AUTHORITY
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"document id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.text, str):
            raise TypeError(f"document {self.id!r}: text must be a string, not {type(self.text).__name__}")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a document's text; ``span`` is its (start, end) character range in ``Document.text``."""

    chunk_id: str
    doc_id: str
    text: str
    span: tuple[int, int]


@dataclass(slots=True)
class Candidate:
    """A passage on its way through the stages: a stage-1 hit, or anything a caller brings to rerank.

    Only ``text`` is required. ``score`` and ``rank`` (1-based) are stage 1's, when there was one;
    ``updated_at`` and ``authority`` feed the freshness and authority signals (``updated_at`` is kept as
    given, a datetime, ISO string or Unix seconds: the freshness signal parses it and counts what it cannot
    read); ``metadata`` holds the document's user fields (what filters match).
    """

    text: str
    doc_id: str | None = None
    chunk_id: str | None = None
    title: str = ""
    source: str = ""
    span: tuple[int, int] | None = None
    score: float | None = None
    rank: int | None = None
    updated_at: datetime | str | float | None = None
    authority: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def as_candidate(item: Any, position: int) -> Candidate:
    """Caller input as a Candidate: a Candidate, a string, a mapping or an object with a text field.

    Fields are read from the top level first, then (title, source, updated_at, authority) from
    ``metadata``, where LangChain and LlamaIndex keep them. ``position`` (0-based) names the item in
    errors and is its stage-1 rank when the input carries none. A Candidate is returned as it is.
    """
    if isinstance(item, Candidate):
        return item
    if isinstance(item, str):
        return Candidate(text=item, rank=position + 1)
    if item is None:
        raise TypeError(f"document {position} is None; expected a string or a dict/object with text")
    get = item.get if isinstance(item, Mapping) else lambda key, default=None: getattr(item, key, default)
    metadata = get("metadata")
    metadata = dict(metadata) if isinstance(metadata, Mapping) else {}

    def lookup(key: str) -> Any:
        value = get(key)
        return metadata.get(key) if value is None else value

    text = next((value for key in TEXT_KEYS if isinstance(value := get(key), str)), None)
    if text is None:
        keys = " / ".join(TEXT_KEYS)
        if isinstance(item, Mapping):
            raise TypeError(
                f"document {position} is a dict without a string field {keys} "
                f"(its keys: {', '.join(map(str, item)) or 'none'})"
            )
        raise TypeError(
            f"document {position} is a {type(item).__name__} with no text; "
            f"expected a string, or a dict/object with a string {keys}"
        )
    doc_id = get("doc_id", get("id"))
    chunk_id = get("chunk_id")
    score, rank, authority = get("score"), get("rank"), lookup("authority")
    return Candidate(
        text=text,
        doc_id=None if doc_id is None else str(doc_id),
        chunk_id=None if chunk_id is None else str(chunk_id),
        title=str(lookup("title") or ""),
        source=str(lookup("source") or ""),
        span=_span(get("span"), position),
        score=float(score) if _is_number(score) else None,
        rank=rank if isinstance(rank, int) and not isinstance(rank, bool) and rank > 0 else position + 1,
        updated_at=lookup("updated_at"),
        authority=float(authority) if _is_number(authority) else None,
        metadata=metadata,
    )


def _span(value: Any, position: int) -> tuple[int, int] | None:
    """A (start, end) character range, or a one-line error naming the document."""
    if value is None:
        return None
    if not isinstance(value, str | bytes):
        try:
            start, end = value
            return int(start), int(end)
        except (TypeError, ValueError):
            pass
    raise TypeError(f"document {position}: span must be a (start, end) pair of integers, not {value!r:.40}")


def title_and_text(title: str | None, text: str) -> str:
    """What a model reads for a titled document: the title, a space, the text (BEIR's convention)."""
    title = (title or "").strip()
    return f"{title} {text}" if title else text


def parse_datetime(value: Any, where: str = "") -> datetime | None:
    """An ISO date or datetime, a datetime or Unix seconds as an aware UTC datetime; None when absent.

    Naive values are taken as UTC. Raises ValueError, naming ``where`` (a file, a document id), for a
    value that is present but not a date (a bool is not Unix seconds), so an ingester can refuse it and
    a signal can count it.
    """
    prefix = f"{where}: " if where else ""
    if value is None or value == "":
        return None
    if not isinstance(value, datetime | str) and not _is_number(value):
        kind = type(value).__name__
        raise ValueError(f"{prefix}updated_at must be an ISO date or Unix seconds, not {kind}")
    try:
        if isinstance(value, datetime):
            parsed = value
        elif isinstance(value, str):
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        else:
            parsed = datetime.fromtimestamp(value, tz=UTC)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError, OSError) as exc:  # not a date, or one beyond year 1..9999 in UTC
        problem = "is not an ISO date (YYYY-MM-DD[THH:MM])" if isinstance(value, str) else "is out of range"
        raise ValueError(f"{prefix}updated_at {value!r:.60} {problem}") from exc


@dataclass(frozen=True, slots=True)
class AuthorityRules:
    """Authority weight per source pattern: the first glob in ``patterns`` matching a source wins.

    Used at ingest (the weight is stored with the document) and at query time (patterns given then
    override the stored weight, being the newer, explicit setting).
    Example: ``AuthorityRules({"*/handbook/*": 0.9, "*.html": 0.3}, default=0.5)``.
    """

    patterns: Mapping[str, float] = field(default_factory=dict)
    default: float = DEFAULT_AUTHORITY

    def __post_init__(self) -> None:
        for pattern, weight in {**self.patterns, "default": self.default}.items():
            if not _is_number(weight) or not 0.0 <= float(weight) <= 1.0:
                raise ValueError(
                    f"authority weight for {pattern!r} must be a number in [0, 1], got {weight!r}"
                )

    def weight(self, source: str, stored: Any = None) -> float:
        """The first pattern matching ``source``, else a stored weight (clipped to [0, 1]), else default."""
        for pattern, weight in self.patterns.items():
            if fnmatch.fnmatch(source, pattern):
                return float(weight)
        if _is_number(stored) and math.isfinite(stored):
            return min(1.0, max(0.0, float(stored)))
        return float(self.default)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
