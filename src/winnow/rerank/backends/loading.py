"""Load a cross-encoder checkpoint and refuse things that are not one."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from winnow.models.architecture import check_cross_encoder


def load_sequence_classifier(model_dir: Path, dtype: torch.dtype = torch.float32, attention: str = "sdpa"):
    """The Hugging Face model in ``dtype``, quietly (no progress bars or load reports)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    import winnow.models.gated_cross_encoder  # noqa: F401  (registers Winnow's gated architecture)

    check_cross_encoder(model_dir)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        return AutoModelForSequenceClassification.from_pretrained(
            model_dir, dtype=dtype, attn_implementation=attention
        )
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()


def takes_token_type_ids(model) -> bool:
    """Whether the model's forward accepts segment ids (BERT does, RoBERTa-style models ignore them)."""
    return (
        "token_type_ids" in inspect.signature(model.forward).parameters and model.config.type_vocab_size > 1
    )
