"""Freshness: newer documents score higher, halving every ``half_life_days``.

Why a decay and not a cutoff: an old answer is still better than none, it should only lose ties to a
newer one. Documents without a usable date cannot be aged, so a policy decides what they get:
``"neutral"`` (``missing_value``, 0.5 by default: neither rewarded nor punished) or ``"oldest"`` (0.0).
Missing and malformed dates are counted, so a caller sees how much of a ranking rested on the policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from winnow.records import parse_datetime

MissingDatePolicy = Literal["neutral", "oldest"]
MISSING_DATE_POLICIES: tuple[str, ...] = ("neutral", "oldest")


@dataclass(slots=True)
class DateCounts:
    """How many documents had no date, and how many had a date that could not be read."""

    missing: int = 0
    malformed: int = 0
    examples: list[str] = field(default_factory=list)


def check_freshness_settings(half_life_days: float, policy: str, missing_value: float) -> None:
    if not half_life_days > 0 or not math.isfinite(half_life_days):
        raise ValueError(f"half_life_days must be a positive number of days, got {half_life_days!r}")
    if policy not in MISSING_DATE_POLICIES:
        raise ValueError(f"missing_date policy must be one of {MISSING_DATE_POLICIES}, got {policy!r}")
    if not 0.0 <= missing_value <= 1.0:
        raise ValueError(f"missing_date_value must be in [0, 1], got {missing_value!r}")


def freshness(
    updated_at: Any,
    now: datetime,
    half_life_days: float,
    policy: MissingDatePolicy = "neutral",
    missing_value: float = 0.5,
    counts: DateCounts | None = None,
    label: str = "",
) -> float:
    """``0.5 ** (age_days / half_life_days)`` in (0, 1]; dates in the future count as age 0.

    A missing or malformed date gets the policy's value and is tallied in ``counts`` (``label``, e.g.
    the document id, is kept as an example). Never raises on a bad date.
    """
    try:
        date = parse_datetime(updated_at)
    except ValueError:
        if counts is not None:
            counts.malformed += 1
            if len(counts.examples) < 5:
                counts.examples.append(f"{label}: {updated_at!r:.40}")
        return missing_value if policy == "neutral" else 0.0
    if date is None:
        if counts is not None:
            counts.missing += 1
        return missing_value if policy == "neutral" else 0.0
    age_days = max(0.0, (now - date).total_seconds() / 86_400)
    return 0.5 ** (age_days / half_life_days)
