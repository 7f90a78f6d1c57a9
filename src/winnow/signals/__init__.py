"""Production signals after reranking: freshness, authority, diversity, calibration and abstention."""

from typing import TYPE_CHECKING

from winnow._lazy import lazy_attributes
from winnow.signals.abstention import (
    DEFAULT_MIN_CONFIDENCE,
    Abstention,
    ThresholdProposal,
    check_threshold,
    propose_threshold,
)

if TYPE_CHECKING:
    from winnow.signals.calibration import (
        IsotonicCalibrator,
        PlattCalibrator,
        SigmoidCalibrator,
        expected_calibration_error,
        fit_calibrator,
        load_calibrator,
    )
    from winnow.signals.combine import Signals, combine
    from winnow.signals.freshness import DateCounts

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "Abstention",
    "DateCounts",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "SigmoidCalibrator",
    "Signals",
    "ThresholdProposal",
    "check_threshold",
    "combine",
    "expected_calibration_error",
    "fit_calibrator",
    "load_calibrator",
    "propose_threshold",
]

# Calibration and the combined signals import numpy and scipy: loaded on first use, so the CLI starts fast.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        **dict.fromkeys(
            [
                "IsotonicCalibrator",
                "PlattCalibrator",
                "SigmoidCalibrator",
                "expected_calibration_error",
                "fit_calibrator",
                "load_calibrator",
            ],
            "winnow.signals.calibration",
        ),
        "Signals": "winnow.signals.combine",
        "combine": "winnow.signals.combine",
        "DateCounts": "winnow.signals.freshness",
    },
)
