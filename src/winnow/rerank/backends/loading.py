"""Load a cross-encoder checkpoint and refuse things that are not one."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch

from winnow.models.architecture import check_cross_encoder
from winnow.models.quiet import quiet_loading


def load_sequence_classifier(model_dir: Path, dtype: torch.dtype = torch.float32, attention: str = "sdpa"):
    """The Hugging Face model in ``dtype``, quietly (no progress bars or load reports)."""
    from transformers import AutoModelForSequenceClassification

    import winnow.models.gated_cross_encoder  # noqa: F401  (registers Winnow's gated architecture)

    check_cross_encoder(model_dir)
    with quiet_loading():
        return AutoModelForSequenceClassification.from_pretrained(
            model_dir, dtype=dtype, attn_implementation=attention
        )


def takes_token_type_ids(model) -> bool:
    """Whether the model's forward accepts segment ids (BERT does, RoBERTa-style models ignore them)."""
    return (
        "token_type_ids" in inspect.signature(model.forward).parameters and model.config.type_vocab_size > 1
    )
