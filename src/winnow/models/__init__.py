"""Model resolution and hardware choices shared by stage 1 (embeddings) and stage 2 (cross-encoders)."""

from winnow.models.hardware import cpu_has_fast_bf16, pick_device, pick_dtype
from winnow.models.registry import (
    DEFAULT_EMBEDDING_MODEL,
    KNOWN_MODELS,
    resolve_model,
)

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "KNOWN_MODELS",
    "cpu_has_fast_bf16",
    "pick_device",
    "pick_dtype",
    "resolve_model",
]
