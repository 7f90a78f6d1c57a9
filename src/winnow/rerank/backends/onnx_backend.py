"""Cross-encoder inference in ONNX Runtime: fp32, or int8 with dynamically quantized weights.

The model is exported once and cached on disk under a key made from its files' content, so later
runs (and other processes) load the ONNX file directly.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from winnow.models.architecture import check_cross_encoder
from winnow.models.onnx_export import atomic_write, export_folder, export_module, onnx_session


def export_attention(config: dict) -> str:
    """Which attention code to trace. BERT: eager, the pattern ONNX Runtime fuses into one Attention op.
    The gated model: its sdpa code, where a layer whose cross gates are all shut traces one masked
    softmax instead of two softmaxes and their mix (1.5x faster in ONNX Runtime on an AVX2 EPYC)."""
    from winnow.models.gated_cross_encoder import MODEL_TYPE

    return "sdpa" if config.get("model_type") == MODEL_TYPE else "eager"


def export_onnx(model_dir: Path, target: Path) -> None:
    """Export the cross-encoder (fp32) to ONNX: token ids in, logits out."""
    from winnow.rerank.backends.loading import load_sequence_classifier, takes_token_type_ids  # torch

    config = check_cross_encoder(model_dir)
    model = load_sequence_classifier(model_dir, attention=export_attention(config)).eval()
    names = ["input_ids", "attention_mask"]
    if takes_token_type_ids(model):
        names.append("token_type_ids")
    export_module(model, names, "logits", model.config, target)


def sensitive_matmuls(graph) -> list[str]:
    """MatMul nodes left in fp32 by int8 quantization: attention's own products (scores and mix, both
    operands activations, quantized per batch they lose the most) and the first and last layers'."""
    weights = {tensor.name for tensor in graph.initializer}
    layer_of = {node.name: re.search(r"layer\.(\d+)/", node.name) for node in graph.node}
    layers = [int(found.group(1)) for found in layer_of.values() if found]
    edges = {min(layers), max(layers)} if layers else set()
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and (
            not any(name in weights for name in node.input)
            or (layer_of[node.name] and int(layer_of[node.name].group(1)) in edges)
        )
    ]


def quantize_onnx(source: Path, target: Path) -> None:
    """Dynamic int8 quantization: per-channel int8 weights of the middle layers' linear MatMuls,
    activations quantized on the fly; attention products and the first and last layers stay fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    keep_fp32 = sensitive_matmuls(onnx.load(str(source), load_external_data=False).graph)

    def write(path: Path) -> None:
        quantize_dynamic(
            str(source),
            str(path),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            nodes_to_exclude=keep_fp32,
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )

    atomic_write(target, write)


def exported_model(model_dir: Path, quantized: bool) -> Path:
    """Path of the cached ONNX file for this model, exporting (and quantizing) it on first use."""
    folder = export_folder(model_dir)
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
        self.device = device
        self.dtype = "int8" if quantized else "fp32"
        self.num_labels = len(check_cross_encoder(model_dir).get("id2label") or {}) or 1
        self.session = onnx_session(exported_model(model_dir, quantized), device)
        self._inputs = {item.name for item in self.session.get_inputs()}

    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: array for name, array in batch.items() if name in self._inputs}
        return self.session.run(["logits"], feed)[0].astype(np.float32)
