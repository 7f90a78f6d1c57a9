"""Cross-encoder inference in ONNX Runtime: fp32, or int8 with dynamically quantized weights.

The model is exported once and cached on disk under a key made from its files' content, so later
runs (and other processes) load the ONNX file directly.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from winnow.rerank.backends.loading import check_cross_encoder, load_sequence_classifier, takes_token_type_ids

ONNX_OPSET = 17
# Bump when the export itself changes (inputs, fusion, quantization), so old cached files are not reused.
EXPORT_VERSION = 2


def cache_root() -> Path:
    """Where exported models live: $WINNOW_CACHE_DIR, else ~/.cache/winnow."""
    return Path(os.environ.get("WINNOW_CACHE_DIR", Path.home() / ".cache" / "winnow")).expanduser()


def model_fingerprint(model_dir: Path) -> str:
    """A short hash of the config and weight files, so a changed model gets a fresh export."""
    digest = hashlib.sha256(f"export-v{EXPORT_VERSION}-opset{ONNX_OPSET}".encode())
    for path in sorted(model_dir.iterdir()):
        if path.suffix in (".json", ".safetensors", ".bin"):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _atomic_write(target: Path, write) -> None:
    """Write through a temporary file, so an interrupted export never leaves a broken cache entry."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".partial")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)


def export_onnx(model_dir: Path, target: Path) -> None:
    """Export the model to ONNX with dynamic batch and sequence axes, then fuse BERT ops if possible."""
    config = check_cross_encoder(model_dir)
    model = load_sequence_classifier(model_dir, attention="eager").eval()
    names = ["input_ids", "attention_mask"]
    if takes_token_type_ids(model):
        names.append("token_type_ids")
    example = tuple(
        torch.ones((2, 8), dtype=torch.long)
        if n != "token_type_ids"
        else torch.zeros((2, 8), dtype=torch.long)
        for n in names
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in names} | {"logits": {0: "batch"}}

    def write(path: Path) -> None:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                example,
                str(path),
                input_names=names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
        if config.get("model_type") == "bert":
            from onnxruntime.transformers import optimizer

            fused = optimizer.optimize_model(
                str(path),
                model_type="bert",
                num_heads=config["num_attention_heads"],
                hidden_size=config["hidden_size"],
                opt_level=1,
            )
            fused.save_model_to_file(str(path))

    _atomic_write(target, write)


def quantize_onnx(source: Path, target: Path) -> None:
    """Dynamic int8 quantization of the weights (activations are quantized on the fly)."""
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def write(path: Path) -> None:
        quantize_dynamic(
            str(source),
            str(path),
            weight_type=QuantType.QInt8,
            per_channel=True,
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )

    _atomic_write(target, write)


def exported_model(model_dir: Path, quantized: bool) -> Path:
    """Path of the cached ONNX file for this model, exporting (and quantizing) it on first use."""
    folder = cache_root() / "onnx" / model_fingerprint(model_dir)
    fp32 = folder / "model.onnx"
    if not fp32.is_file():
        export_onnx(model_dir, fp32)
    if not quantized:
        return fp32
    int8 = folder / "model.int8.onnx"
    if not int8.is_file():
        quantize_onnx(fp32, int8)
    return int8


class OnnxBackend:
    """An exported cross-encoder run by ONNX Runtime (CPU, or CUDA when that provider is installed)."""

    name = "onnx"

    def __init__(self, model_dir: Path, device: str, quantized: bool) -> None:
        import onnxruntime as ort

        self.device = device
        self.dtype = "int8" if quantized else "fp32"
        self.num_labels = len(check_cross_encoder(model_dir).get("id2label") or {}) or 1
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        providers = ["CPUExecutionProvider"]
        if device.startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        self.session = ort.InferenceSession(
            str(exported_model(model_dir, quantized)), options, providers=providers
        )
        self._inputs = {item.name for item in self.session.get_inputs()}

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: array for name, array in batch.items() if name in self._inputs}
        return self.session.run(["logits"], feed)[0].astype(np.float32)
