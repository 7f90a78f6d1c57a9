"""Stage 2: cross-encoder reranking, hosted rerank APIs, and calibrated probabilities."""

from typing import TYPE_CHECKING

from winnow._lazy import lazy_attributes

if TYPE_CHECKING:
    from winnow.rerank.cache import ScoreCache
    from winnow.rerank.calibration import (
        IsotonicCalibrator,
        PlattCalibrator,
        SigmoidCalibrator,
        expected_calibration_error,
        fit_calibrator,
        load_calibrator,
    )
    from winnow.rerank.cascade import Cascade
    from winnow.rerank.reranker import DEFAULT_RERANKER, Reranker
    from winnow.rerank.results import Ranking, RerankResult

__all__ = [
    "DEFAULT_RERANKER",
    "Cascade",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "Ranking",
    "RerankResult",
    "Reranker",
    "ScoreCache",
    "SigmoidCalibrator",
    "expected_calibration_error",
    "fit_calibrator",
    "load_calibrator",
]

# Loaded on first use: the reranker imports torch and calibration numpy, which the CLI's --help and
# index commands do not need.
__getattr__, __dir__ = lazy_attributes(
    __name__,
    {
        "ScoreCache": "winnow.rerank.cache",
        "Cascade": "winnow.rerank.cascade",
        "DEFAULT_RERANKER": "winnow.models.registry",
        "Reranker": "winnow.rerank.reranker",
        "Ranking": "winnow.rerank.results",
        "RerankResult": "winnow.rerank.results",
        **dict.fromkeys(
            [
                "IsotonicCalibrator",
                "PlattCalibrator",
                "SigmoidCalibrator",
                "expected_calibration_error",
                "fit_calibrator",
                "load_calibrator",
            ],
            "winnow.rerank.calibration",
        ),
    },
)
