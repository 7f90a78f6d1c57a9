"""Evaluation harness: load a data set, run the configuration grid, report quality and cost side by side."""

from winnow.evaluation.datasets import DatasetError, EvalSet, load_dataset
from winnow.evaluation.experiment import Config, ExperimentResult, run_grid
from winnow.evaluation.metrics import METRICS, Evaluation, NoOverlapWarning, evaluate
from winnow.evaluation.report import write_report

__all__ = [
    "METRICS",
    "Config",
    "DatasetError",
    "EvalSet",
    "Evaluation",
    "ExperimentResult",
    "NoOverlapWarning",
    "evaluate",
    "load_dataset",
    "run_grid",
    "write_report",
]
