"""Production signals after reranking: freshness, authority, diversity, calibration and abstention."""

from winnow.signals.abstention import Abstention, ThresholdProposal, check_threshold, propose_threshold
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
