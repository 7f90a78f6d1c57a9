"""Model resolution and hardware choices shared by stage 1 (embeddings) and stage 2 (cross-encoders)."""

from typing import TYPE_CHECKING

from winnow._lazy import lazy_attributes
from winnow.models.registry import DEFAULT_EMBEDDING_MODEL, DEFAULT_RERANKER, KNOWN_MODELS, resolve_model

if TYPE_CHECKING:
    from winnow.models.hardware import cpu_has_fast_bf16, pick_device, pick_dtype

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_RERANKER",
    "KNOWN_MODELS",
    "cpu_has_fast_bf16",
    "pick_device",
    "pick_dtype",
    "resolve_model",
]

# The hardware probes import torch; model names resolve without it.
__getattr__, __dir__ = lazy_attributes(
    __name__, dict.fromkeys(["cpu_has_fast_bf16", "pick_device", "pick_dtype"], "winnow.models.hardware")
)
