"""What a model folder holds, read from its config.json: a cross-encoder (a pair scorer) or not.

The reranker refuses anything else (a bi-encoder cannot rerank pairs) and training decides from it
whether a base continues as it is or gets a fresh classifier head: one answer for both.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def model_config(model_dir: Path) -> dict[str, Any]:
    """The folder's config.json as a dict."""
    return json.loads((model_dir / "config.json").read_text(encoding="utf-8"))


def is_cross_encoder(model_dir: Path) -> bool:
    """Whether the folder holds a pair scorer (a ``*ForSequenceClassification``), not a bare encoder."""
    return _scores_pairs(model_config(model_dir))


def check_cross_encoder(model_dir: Path) -> dict[str, Any]:
    """The model's config, after checking it is a sequence classifier with one or two labels."""
    config = model_config(model_dir)
    if not _scores_pairs(config):
        architectures = config.get("architectures") or []
        raise ValueError(
            f"{model_dir} is not a cross-encoder: its architectures are {architectures or 'unset'}, "
            "expected a *ForSequenceClassification model (a bi-encoder cannot rerank pairs)"
        )
    num_labels = len(config.get("id2label") or {}) or config.get("num_labels", 2)
    if num_labels not in (1, 2):
        raise ValueError(
            f"{model_dir} has {num_labels} labels; a cross-encoder needs 1 (a score) or 2 (no/yes)"
        )
    return config


def _scores_pairs(config: dict[str, Any]) -> bool:
    return any(str(name).endswith("ForSequenceClassification") for name in config.get("architectures") or [])
