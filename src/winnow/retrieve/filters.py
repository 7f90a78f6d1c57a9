"""Metadata filters, compiled to SQL over the index's system of record.

The result is a row mask that the retrievers apply while scoring, so ``k`` results come back from the
matching documents instead of a top-k list that a post-filter then thins out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from winnow.records import parse_datetime

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


@dataclass(frozen=True)
class Filters:
    """``source`` is a glob on the source path/URL (``*`` wildcards); dates bound ``updated_at``
    inclusively; ``where`` holds ``key = value`` matches on user metadata (values compared as text)."""

    source: str | None = None
    updated_after: datetime | None = None
    updated_before: datetime | None = None
    where: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, filters: Filters | Mapping[str, Any] | None) -> Filters | None:
        """A Filters or a dict: ``source``, ``updated_after``, ``updated_before``; other keys are metadata."""
        if filters is None or isinstance(filters, Filters):
            return filters
        if not isinstance(filters, Mapping):
            raise TypeError(f"filters must be a dict or Filters, not {type(filters).__name__}")
        rest = dict(filters)
        where = dict(rest.pop("where", {}) or {})
        source = rest.pop("source", None)
        after = parse_datetime(rest.pop("updated_after", None), "filter updated_after")
        before = parse_datetime(rest.pop("updated_before", None), "filter updated_before")
        where.update(rest)
        return cls(source=source, updated_after=after, updated_before=before, where=where)

    def to_sql(self) -> tuple[str, list[Any]]:
        """A WHERE clause over ``documents d`` and its parameters."""
        clauses: list[str] = []
        params: list[Any] = []
        if self.source:
            clauses.append("d.source GLOB ?")
            params.append(self.source)
        if self.updated_after is not None:
            clauses.append("d.updated_at >= ?")
            params.append(self.updated_after.isoformat())
        if self.updated_before is not None:
            clauses.append("d.updated_at <= ?")
            params.append(self.updated_before.isoformat())
        for key, value in self.where.items():
            if not _KEY.match(key):
                raise ValueError(f"filter key {key!r} must be letters, digits, '_', '-' or '.'")
            clauses.append(f"CAST(json_extract(d.metadata, '$.\"{key}\"') AS TEXT) = ?")
            params.append(_as_text(value))
        return (" AND ".join(clauses) or "1"), params


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def parse_filter_args(items: list[str]) -> dict[str, str]:
    """CLI ``--filter key=value`` strings as a dict; raises ValueError naming the bad item."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"filter {item!r} must look like key=value (e.g. source=*docs*)")
        out[key.strip()] = value.strip()
    return out
