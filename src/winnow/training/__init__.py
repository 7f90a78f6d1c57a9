"""Train Winnow's cross-encoders: data readers, hard-negative mining, losses and the training loop."""

from winnow.training.config import RecipeError, TrainConfig
from winnow.training.data import Group, LoadReport, TrainingDataError, read_beir, read_jsonl
from winnow.training.trainer import TrainResult, train

__all__ = [
    "Group",
    "LoadReport",
    "RecipeError",
    "TrainConfig",
    "TrainResult",
    "TrainingDataError",
    "read_beir",
    "read_jsonl",
    "train",
]
