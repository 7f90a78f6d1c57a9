"""A bi-encoder as one torch module: the transformer, its pooling and L2 normalisation, token ids in and
unit vectors out. Torch runs it for document batches; ONNX Runtime runs its export for queries.

A module of its own so that answering queries (``winnow.retrieve.dense``) never imports torch: it is
loaded only when documents are embedded or the query model is exported for the first time.
"""

from __future__ import annotations

from pathlib import Path

import torch

from winnow.models.fused_linear import fuse_linear_layers, runs_fused
from winnow.models.hardware import torch_dtype
from winnow.models.onnx_export import export_module
from winnow.models.quiet import quiet_loading


class PooledEncoder(torch.nn.Module):
    """The transformer plus pooling ("mean" or "cls") and L2 normalisation."""

    def __init__(self, encoder: torch.nn.Module, pooling: str):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:  # only for models whose tokenizer makes them
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state.float()
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)


def load_pooled_encoder(model_dir: Path, pooling: str, device: str, dtype: str) -> PooledEncoder:
    """The model in ``dtype`` on ``device``, in eval mode.

    bf16 on a CPU: fp32 with fused bf16 linear layers (``winnow.models.fused_linear``).
    """
    from transformers import AutoModel

    fused = runs_fused(device, dtype)
    with quiet_loading():
        encoder = AutoModel.from_pretrained(model_dir, dtype=torch.float32 if fused else torch_dtype(dtype))
    if fused:
        fuse_linear_layers(encoder)
    return PooledEncoder(encoder, pooling).to(device).eval()


def export_pooled_encoder(model_dir: Path, pooling: str, input_names: list[str], target: Path) -> None:
    """Export the fp32 model with its pooling to ONNX.

    The export uses a model instance of its own: tracing leaves the traced instance unfit for later use.
    """
    from transformers import AutoModel

    with quiet_loading():
        encoder = AutoModel.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    export_module(PooledEncoder(encoder, pooling).eval(), input_names, "embedding", encoder.config, target)
