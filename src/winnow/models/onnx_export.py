"""ONNX exports of Winnow's models, made once and cached on disk, and the ONNX Runtime sessions that run them.

The reranker (``winnow.rerank.backends.onnx_backend``) and the query encoder (``winnow.retrieve.dense``)
both export a torch module here. The cache key is the model's fingerprint (its files' content) and the
export version, so a changed model gets a fresh export, and every file is written through a temporary
name, so an interrupted export never leaves a broken cache entry.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from winnow.models.fingerprint import model_fingerprint
from winnow.models.hardware import cpu_threads
from winnow.paths import cache_root

if TYPE_CHECKING:
    import onnxruntime
    import torch

ONNX_OPSET = 17
# Bump when an export changes (inputs, fusion, quantization), so old cached files are not reused.
EXPORT_VERSION = 4


def export_folder(model_dir: Path) -> Path:
    """The cache folder of one model's exports: a changed model or a changed export gets a fresh one."""
    return cache_root() / "onnx" / f"{model_fingerprint(model_dir)}-v{EXPORT_VERSION}-opset{ONNX_OPSET}"


def atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then move the file into place; an interruption leaves nothing."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def export_module(
    module: torch.nn.Module, input_names: list[str], output_name: str, config, target: Path
) -> None:
    """Export ``module`` (token ids in, one tensor out) with dynamic batch and length axes to ``target``.

    ``config`` is the Hugging Face config: BERT models get ONNX Runtime's attention/LayerNorm fusion.
    The example inputs are ones (segment ids zeros); the graph does not depend on their values.
    """
    import torch

    example = tuple(
        torch.zeros((2, 8), dtype=torch.long)
        if name == "token_type_ids"
        else torch.ones((2, 8), dtype=torch.long)
        for name in input_names
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names} | {output_name: {0: "batch"}}

    def write(path: Path) -> None:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                example,
                str(path),
                input_names=input_names,
                output_names=[output_name],
                dynamic_axes=axes,
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        if config.model_type == "bert":
            from onnxruntime.transformers import optimizer

            fused = optimizer.optimize_model(
                str(path),
                model_type="bert",
                num_heads=config.num_attention_heads,
                hidden_size=config.hidden_size,
                opt_level=1,
            )
            fused.save_model_to_file(str(path))

    atomic_write(target, write)


def onnx_session(path: Path, device: str = "cpu") -> onnxruntime.InferenceSession:
    """An ONNX Runtime session with the thread count torch would use, on CUDA when asked for and installed.

    One graph node at a time (sequential), each spread over ``cpu_threads()`` (one per physical core):
    a transformer's nodes depend on each other, so parallel nodes would only fight for the cores.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = cpu_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    providers = ["CPUExecutionProvider"]
    if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), options, providers=providers)
