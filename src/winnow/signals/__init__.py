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
from winnow.signals.combine import Signals, combine
from winnow.signals.freshness import DateCounts

if TYPE_CHECKING:
    from winnow.signals.calibration import (
        IsotonicCalibrator,
        PlattCalibrator,
        SigmoidCalibrator,
        expected_calibration_error,
        fit_calibrator,
        load_calibrator,
    )

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

# Calibration imports numpy and scipy: loaded on first use, so the CLI starts fast. (``combine`` is imported
# eagerly: the function shares its name with its module, which a lazy attribute would hand out instead.)
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
    },
)
