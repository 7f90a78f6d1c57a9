"""Production signals after reranking: freshness, authority, diversity and abstention."""

from winnow.signals.abstention import (
    DEFAULT_MIN_CONFIDENCE,
    Abstention,
    ThresholdProposal,
    check_threshold,
    propose_threshold,
)
from winnow.signals.combine import Signals, combine
from winnow.signals.freshness import DateCounts

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "Abstention",
    "DateCounts",
    "Signals",
    "ThresholdProposal",
    "check_threshold",
    "combine",
    "propose_threshold",
]
