"""Combine the calibrated relevance probability with freshness and authority, then diversify.

``final = (w_rel * relevance + w_fresh * freshness + w_auth * authority) / (w_rel + w_fresh + w_auth)``,
so it stays in [0, 1] and reads as a blended confidence. MMR (when ``mmr_lambda < 1``) and the
per-document cap reorder after that. Every result keeps each component, so a user can see why it
ranked where it did. The defaults (relevance only, no MMR, no cap) leave the reranker's order untouched.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from winnow.records import DEFAULT_AUTHORITY, AuthorityRules
from winnow.signals.diversity import check_diversity_settings, diversify
from winnow.signals.freshness import DateCounts, MissingDatePolicy, check_freshness_settings, freshness

if TYPE_CHECKING:
    import numpy as np

Embed = Callable[[list[str]], "np.ndarray"]


@dataclass(frozen=True)
class Signals:
    """Which production signals rerank results, and how strongly.

    Weights are non-negative and need not sum to 1 (they are normalised). ``half_life_days``: the age
    at which freshness halves. ``missing_date``: "neutral" (``missing_date_value``) or "oldest" (0) for
    documents without a readable date. ``authority_patterns``: source glob -> weight in [0, 1]
    (first match wins; else the document's stored authority; else ``default_authority``).
    ``mmr_lambda`` < 1 turns on MMR diversity (needs ``embedder``, or a Pipeline over an Index, whose
    bi-encoder is then used). ``max_chunks_per_doc`` caps chunks of one document. ``now`` fixes the
    clock (reproducible rankings); None means the current time.
    """

    relevance_weight: float = 1.0
    freshness_weight: float = 0.0
    authority_weight: float = 0.0
    half_life_days: float = 180.0
    missing_date: MissingDatePolicy = "neutral"
    missing_date_value: float = 0.5
    authority_patterns: Mapping[str, float] = field(default_factory=dict)
    default_authority: float = DEFAULT_AUTHORITY
    mmr_lambda: float = 1.0
    max_chunks_per_doc: int | None = None
    embedder: Embed | None = None
    now: datetime | None = None

    def __post_init__(self) -> None:
        weights = {
            "relevance_weight": self.relevance_weight,
            "freshness_weight": self.freshness_weight,
            "authority_weight": self.authority_weight,
        }
        for name, weight in weights.items():
            if isinstance(weight, bool) or not isinstance(weight, int | float) or not math.isfinite(weight):
                raise ValueError(f"{name} must be a finite number, got {weight!r}")
            if weight < 0:
                raise ValueError(f"{name} must not be negative, got {weight}")
        if sum(weights.values()) <= 0:
            raise ValueError(
                "at least one of relevance_weight, freshness_weight, authority_weight must be > 0"
            )
        check_freshness_settings(self.half_life_days, self.missing_date, self.missing_date_value)
        AuthorityRules(self.authority_patterns, self.default_authority)  # raises on a weight outside [0, 1]
        check_diversity_settings(self.mmr_lambda, self.max_chunks_per_doc)

    @property
    def reorders(self) -> bool:
        """True when these settings can change scores or order (the defaults cannot)."""
        return (
            self.freshness_weight > 0
            or self.authority_weight > 0
            or self.mmr_lambda < 1.0
            or self.max_chunks_per_doc is not None
        )


@dataclass(frozen=True, slots=True)
class SignalInput:
    """What the signals need to know about one reranked candidate."""

    probability: float
    text: str
    doc_id: str | None = None
    source: str = ""
    updated_at: Any = None
    authority: Any = None


@dataclass(frozen=True, slots=True)
class Combined:
    """One kept candidate: its input position, final score and every component behind it."""

    index: int
    final_score: float
    components: dict[str, float]


@dataclass(frozen=True, slots=True)
class SignalOutcome:
    """Candidates best first after signals, and the dates the freshness policy had to fill in."""

    results: list[Combined]
    dates: DateCounts


def combine(
    items: Sequence[SignalInput], signals: Signals, top_k: int | None = None, embed: Embed | None = None
) -> SignalOutcome:
    """Score, reorder and cut ``items`` by ``signals``; ``embed`` supplies vectors for MMR."""
    import numpy as np  # here, not at the top: `winnow --help` imports winnow.signals for its defaults

    now = signals.now or datetime.now(UTC)
    counts = DateCounts()
    rules = AuthorityRules(signals.authority_patterns, signals.default_authority)
    total = signals.relevance_weight + signals.freshness_weight + signals.authority_weight
    components: list[dict[str, float]] = []
    finals = np.zeros(len(items))
    for position, item in enumerate(items):
        parts = {
            "relevance": float(item.probability),
            "freshness": freshness(
                item.updated_at,
                now,
                signals.half_life_days,
                signals.missing_date,
                signals.missing_date_value,
                counts,
                item.doc_id or f"#{position}",
            ),
            "authority": rules.weight(item.source, item.authority),
        }
        finals[position] = (
            signals.relevance_weight * parts["relevance"]
            + signals.freshness_weight * parts["freshness"]
            + signals.authority_weight * parts["authority"]
        ) / total
        components.append(parts)
    embeddings = None
    if signals.mmr_lambda < 1.0 and items:
        embed = embed or signals.embedder
        if embed is None:
            raise ValueError("mmr_lambda < 1 needs an embedder (Signals(embedder=...)) to compare chunks")
        embeddings = np.asarray(embed([item.text for item in items]), dtype=np.float32)
    picks = diversify(
        finals,
        embeddings,
        signals.mmr_lambda,
        [item.doc_id for item in items],
        signals.max_chunks_per_doc,
        top_k,
    )
    results = []
    for pick in picks:
        parts = dict(components[pick.index])
        if embeddings is not None:
            parts["mmr"] = pick.mmr
            parts["redundancy"] = pick.redundancy
        results.append(Combined(pick.index, float(finals[pick.index]), parts))
    return SignalOutcome(results, counts)
