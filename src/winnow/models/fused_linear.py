"""CPU inference with bf16 matrix multiplies fused with their bias and GELU, the rest of the model in fp32.

Why: on CPUs with bf16 matrix units, a BERT layer's time goes to its six matmuls, to attention, and
to passes over the matmul outputs that a fused kernel would not need: the bias copy and, above all,
the exact GELU over the 4x-wide feed-forward output, which in bf16 took almost as long as the matmul
that produced it (4,096 tokens x 384 -> 1,536: linear + GELU 23.7 ms, oneDNN's fused
``_linear_pointwise`` 12.7 ms). So every linear layer becomes one oneDNN call with bf16 weights, while
embeddings, LayerNorm and the residual stream stay fp32, the same split as ``torch.autocast``.
Measured on 300 SciFact abstracts (all-MiniLM-L6-v2, 2 cores): the model cast to bf16 whole 7.21 s,
cosine to fp32 0.99995; autocast 7.65 s, 0.99998; this 7.07 s, 0.99998. The fp32 parts are what keep
SciFact's dense nDCG@10 at the fp32 figure (0.6452 vs 0.6445 with the whole model in bf16). Reranking
50 SciFact abstracts it is as fast as the whole-bf16 model (2.48 against 2.38 s, within noise; with
its 128-token chunks 0.90 against 0.89 s) and ranks closer to fp32 (worst Kendall tau 0.998 against
0.989). Fusing the whole-bf16 model instead is 3-11% faster still but gives up that precision.

Inference only: oneDNN's fused op has no backward pass, so training never uses it.
"""

from __future__ import annotations

import torch
from torch import nn

from winnow.models.hardware import cpu_has_fast_bf16


class FusedLinear(nn.Module):
    """``activation(x @ W.T + b)`` as one oneDNN call in ``dtype``; the input is cast to it first."""

    def __init__(self, linear: nn.Linear, dtype: torch.dtype, gelu: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().to(dtype), requires_grad=False)
        bias = linear.bias
        self.bias = None if bias is None else nn.Parameter(bias.detach().to(dtype), requires_grad=False)
        self.gelu = gelu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = torch.ops.mkldnn._linear_pointwise
        x = x.to(self.weight.dtype)
        if self.gelu:  # "none" = the exact (erf) GELU that BERT uses, not the tanh approximation
            return op(x, self.weight, self.bias, "gelu", [], "none")
        return op(x, self.weight, self.bias, "none", [], "")


def _exact_gelu_intermediate(module: nn.Module) -> nn.Linear | None:
    """The ``dense`` layer of a BERT-style ``*Intermediate`` block whose activation is exact GELU."""
    dense = getattr(module, "dense", None)
    if not type(module).__name__.endswith("Intermediate") or not isinstance(dense, nn.Linear):
        return None
    # Winnow's gated model holds the exact GELU function itself; transformers' blocks hold GELUActivation,
    # whose ``act`` is the exact GELU (its tanh-approximation siblings are other classes).
    activation = getattr(module, "intermediate_act_fn", None)
    exact = activation is nn.functional.gelu or (
        type(activation).__name__ == "GELUActivation" and activation.act is nn.functional.gelu
    )
    return dense if exact else None


def runs_fused(device: str, dtype: str) -> bool:
    """Whether a model for this device and number format runs with ``fuse_linear_layers``: bf16 on a CPU
    whose bf16 units oneDNN can use (elsewhere oneDNN cannot build the fused primitive at all)."""
    return device == "cpu" and dtype == "bf16" and cpu_has_fast_bf16()


def fuse_linear_layers(model: nn.Module, dtype: torch.dtype = torch.bfloat16) -> int:
    """Replace the model's linear layers (in place) by ``FusedLinear`` in ``dtype``; returns how many.

    A BERT-style feed-forward block (``dense`` then exact GELU) becomes one fused call; any other
    activation is left to the block and only its linear layer is replaced. The model should be in
    fp32 (then the rest stays fp32) and in eval mode.
    """
    replaced = 0
    for name, child in list(model.named_children()):
        dense = _exact_gelu_intermediate(child)
        if dense is not None:
            setattr(model, name, FusedLinear(dense, dtype, gelu=True))
            replaced += 1
        elif isinstance(child, nn.Linear):
            setattr(model, name, FusedLinear(child, dtype))
            replaced += 1
        else:
            replaced += fuse_linear_layers(child, dtype)
    return replaced
