"""Inference backends for cross-encoders: PyTorch (fp32 / bf16 / fp16), ONNX Runtime (fp32 / int8) and
OpenVINO (fp32, CPU only).

Every backend takes padded int64 arrays and returns float32 logits, shape (batch, num_labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

from winnow.models import cpu_has_fast_bf16, pick_device, pick_dtype

BACKENDS = ("auto", "torch", "onnx", "onnx-int8", "openvino")


class Backend(Protocol):
    name: str
    device: str
    dtype: str
    num_labels: int

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray: ...


def choose_backend(backend: str, device: str | None, dtype: str | None) -> tuple[str, str, str]:
    """Resolve "auto" and defaults into (backend, device, dtype).

    "auto" is the fastest backend measured on this kind of machine whose ranking matches fp32
    (docs/benchmarks.md): torch in bf16 on CPUs with bf16 units and on GPUs; on CPUs without them
    OpenVINO fp32 (about 1.4x ONNX Runtime fp32 on an AVX2-only EPYC, the same ranking as torch fp32).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    device = pick_device(device)
    if backend == "auto":
        if device != "cpu" or cpu_has_fast_bf16() or dtype in ("bf16", "fp16"):
            backend = "torch"
        else:
            backend = "openvino"
    if backend != "torch":
        if dtype not in (None, "fp32"):
            raise ValueError(
                f"the {backend} backend computes in fp32/int8; dtype={dtype!r} needs backend='torch'"
            )
        if backend == "openvino" and device != "cpu":
            raise ValueError(f"backend='openvino' runs on the CPU, not {device!r}")
        return backend, device, "int8" if backend == "onnx-int8" else "fp32"
    return backend, device, pick_dtype(device, dtype)


def load_backend(backend: str, model_dir: Path, device: str, dtype: str) -> Backend:
    """Load the model directory into the chosen backend."""
    if backend == "torch":
        from winnow.rerank.backends.torch_backend import TorchBackend

        return TorchBackend(model_dir, device, dtype)
    if backend == "openvino":
        from winnow.rerank.backends.openvino_backend import OpenVinoBackend

        return OpenVinoBackend(model_dir, device)
    from winnow.rerank.backends.onnx_backend import OnnxBackend

    return OnnxBackend(model_dir, device, quantized=backend == "onnx-int8")
