"""Inference backends for cross-encoders: PyTorch (fp32 / bf16 / fp16) and ONNX Runtime (fp32 / int8).

Every backend takes padded int64 arrays and returns float32 logits, shape (batch, num_labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from winnow.models import cpu_has_fast_bf16, pick_device, pick_dtype

BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


class Backend(Protocol):
    name: str
    device: str
    dtype: str
    num_labels: int

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


def choose_backend(backend: str, device: str | None, dtype: str | None) -> tuple[str, str, str]:
    """Resolve "auto" and defaults into (backend, device, dtype).

    "auto" is the fastest backend measured on this kind of machine whose ranking matches fp32
    (docs/benchmarks.md): torch in bf16 on CPUs with bf16 units and on GPUs, else ONNX Runtime fp32.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    device = pick_device(device)
    if backend == "auto":
        if device != "cpu" or cpu_has_fast_bf16() or dtype in ("bf16", "fp16"):
            backend = "torch"
        else:
            backend = "onnx"
    if backend.startswith("onnx"):
        if dtype not in (None, "fp32"):
            raise ValueError(
                f"the {backend} backend computes in fp32/int8; dtype={dtype!r} needs backend='torch'"
            )
        return backend, device, "int8" if backend == "onnx-int8" else "fp32"
    return backend, device, pick_dtype(device, dtype)


def load_backend(backend: str, model_dir: Path, device: str, dtype: str) -> Backend:
    """Load the model directory into the chosen backend."""
    if backend == "torch":
        from winnow.rerank.backends.torch_backend import TorchBackend

        return TorchBackend(model_dir, device, dtype)
    from winnow.rerank.backends.onnx_backend import OnnxBackend

    return OnnxBackend(model_dir, device, quantized=backend == "onnx-int8")
