"""Abstention: say "no confident answer" instead of returning passages nobody should trust.

A threshold on the (calibrated) relevance probability of the best candidate decides. ``propose_threshold``
picks it from labelled data: the lowest threshold whose answered queries reach a target precision,
because the lowest such threshold answers the most queries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# The CLI's default ``--min-confidence``: with the default model's shipped calibration, see
# docs/signals.md ("Calibration shipped with the default model") for how it was chosen.
DEFAULT_MIN_CONFIDENCE = 0.1


def check_threshold(threshold: Any, name: str = "min_confidence") -> float:
    """A probability threshold in [0, 1]; anything else is a ValueError naming ``name``."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not math.isfinite(threshold):
        raise ValueError(f"{name} must be a number in [0, 1], got {threshold!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (a probability), got {threshold}")
    return float(threshold)


@dataclass(frozen=True, slots=True)
class Abstention:
    """No candidate reached ``threshold``: the best one's probability, and the best one itself
    (a ``PipelineResult``, or None when there were no candidates at all) so a caller can still show it."""

    best_probability: float | None
    threshold: float
    best: Any = None

    @property
    def summary(self) -> str:
        """One line for a user, e.g. "no passage is confident enough (best probability 0.12 < 0.30)"."""
        if self.best is None:
            return "no passage was found"
        best, threshold = self.best_probability, self.threshold
        return f"no passage is confident enough (best probability {best:.2f} < {threshold:.2f})"

    @property
    def reason(self) -> str:
        if self.best is None:
            return "no candidates were found"
        return (
            f"best candidate's confidence {self.best_probability:.3f} "
            f"is below the threshold {self.threshold:.3f}"
        )


def is_calibrated(reranker: Any) -> bool:
    """True when the reranker's probabilities come from a fitted calibration (for a ``Cascade``, its
    final model's), not from a plain sigmoid of the logit."""
    final = getattr(reranker, "second", reranker)
    return getattr(final, "calibrator", None) is not None


def effective_min_confidence(requested: float | None, reranker: Any) -> float | None:
    """The threshold a command abstains below: ``requested`` when given (0 turns abstention off), else
    ``DEFAULT_MIN_CONFIDENCE`` for a calibrated reranker and none for an uncalibrated one, whose sigmoid
    says nothing about how often a passage is relevant."""
    if requested is not None:
        return check_threshold(requested) or None
    return DEFAULT_MIN_CONFIDENCE if reranker is not None and is_calibrated(reranker) else None


@dataclass(frozen=True, slots=True)
class ThresholdProposal:
    """A threshold and what it implies on the data it was chosen from.

    ``precision``: fraction of answered queries whose best candidate is relevant; ``answer_rate``:
    fraction of queries answered. ``reached`` is False when no threshold reached ``target_precision``
    (the threshold with the highest precision is proposed instead).
    """

    threshold: float
    precision: float
    answer_rate: float
    target_precision: float
    reached: bool
    queries: int


def answer_stats(best_probabilities: Any, best_relevant: Any, threshold: float) -> tuple[float, float]:
    """(precision, answer rate) when queries whose best probability is >= threshold are answered.
    Precision is 1.0 by convention when nothing is answered."""
    import numpy as np  # here, not at the top: the CLI imports this module for its defaults

    p = np.asarray(best_probabilities, dtype=np.float64)
    y = np.asarray(best_relevant, dtype=bool)
    answered = p >= threshold
    if not len(p):
        raise ValueError("no queries to measure")
    precision = float(y[answered].mean()) if answered.any() else 1.0
    return precision, float(answered.mean())


def propose_threshold(
    best_probabilities: Any, best_relevant: Any, target_precision: float
) -> ThresholdProposal:
    """The lowest threshold at which answered queries reach ``target_precision``.

    One entry per query: its best candidate's probability and whether that candidate is relevant.
    Queries with no relevant candidate at all (out-of-domain ones) belong in the data as not relevant:
    answering them is the mistake abstention exists to avoid.
    """
    import numpy as np  # here, not at the top: the CLI imports this module for its defaults

    check_threshold(target_precision, "target_precision")
    p = np.asarray(best_probabilities, dtype=np.float64)
    y = np.asarray(best_relevant, dtype=bool)
    if len(p) != len(y) or not len(p):
        raise ValueError(f"need one label per probability, at least one (got {len(p)} and {len(y)})")
    order = np.argsort(-p, kind="stable")
    p, y = p[order], y[order]
    # Answering the top i+1 queries: precision of that prefix. Only the last of equal probabilities
    # is a real cut (a threshold cannot separate ties).
    precision = np.cumsum(y) / np.arange(1, len(y) + 1)
    cuts = np.flatnonzero(np.r_[p[1:] < p[:-1], True])
    good = cuts[precision[cuts] >= target_precision]
    reached = len(good) > 0
    cut = int(good.max()) if reached else int(cuts[np.argmax(precision[cuts])])
    threshold = float(p[cut])
    return ThresholdProposal(
        threshold=threshold,
        precision=float(precision[cut]),
        answer_rate=(cut + 1) / len(p),
        target_precision=float(target_precision),
        reached=reached,
        queries=len(p),
    )
