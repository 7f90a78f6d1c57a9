"""The CPU fast paths (ONNX Runtime, OpenVINO) score like torch fp32, and `auto` picks by the CPU's units."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import kendalltau

from winnow.models import hardware
from winnow.rerank import Reranker
from winnow.rerank.backends import choose_backend

QUERY = "what lowers blood pressure in adults"
DOCUMENTS = [
    "Reducing salt intake lowers blood pressure in adults with hypertension.",
    "Regular aerobic exercise reduces systolic blood pressure by about five points.",
    "The Eiffel Tower was finished in 1889 for the World's Fair in Paris.",
    "Beta blockers and ACE inhibitors are common drugs for high blood pressure.",
    "Potassium-rich diets are linked to lower blood pressure in several trials.",
    "Photosynthesis turns light into chemical energy in the chloroplasts of plants.",
    "Chronic stress and poor sleep can raise blood pressure over time.",
    "The stock market closed higher on Friday after the jobs report.",
]


@pytest.fixture
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path))
    return tmp_path


def torch_fp32_scores(model_dir: Path) -> np.ndarray:
    return Reranker(model_dir, backend="torch", dtype="fp32", cache=0).score([(QUERY, d) for d in DOCUMENTS])


def test_openvino_scores_like_torch_fp32(minilm_cross_encoder: Path, isolated_cache: Path) -> None:
    reference = torch_fp32_scores(minilm_cross_encoder)
    reranker = Reranker(minilm_cross_encoder, backend="openvino", cache=0)
    assert (reranker.backend_name, reranker.dtype) == ("openvino", "fp32")
    scores = reranker.score([(QUERY, d) for d in DOCUMENTS])
    np.testing.assert_allclose(scores, reference, atol=1e-3)
    assert kendalltau(scores, reference).statistic == pytest.approx(1.0)
    converted = list(isolated_cache.glob("onnx/*/openvino/model.xml"))
    assert len(converted) == 1 and converted[0].with_suffix(".bin").stat().st_size > 10_000_000
    # A second backend reuses the cached conversion instead of converting again.
    stamp = converted[0].stat().st_mtime_ns
    Reranker(minilm_cross_encoder, backend="openvino", cache=0)
    assert converted[0].stat().st_mtime_ns == stamp


def test_gated_model_exports_one_softmax_per_shut_layer_and_scores_like_torch(
    isolated_cache: Path,
) -> None:
    """The bundled gated model (all cross gates shut) exports the sdpa path: one Softmax per layer."""
    import onnx

    from winnow.models import resolve_model
    from winnow.rerank.backends.onnx_backend import exported_model, sensitive_matmuls

    model_dir = resolve_model("winnow-minilm-l6")
    reference = torch_fp32_scores(model_dir)
    scores = Reranker(model_dir, backend="onnx", cache=0).score([(QUERY, d) for d in DOCUMENTS])
    np.testing.assert_allclose(scores, reference, atol=1e-3)
    graph = onnx.load(str(exported_model(model_dir, quantized=False))).graph
    softmaxes = sum(node.op_type == "Softmax" for node in graph.node)
    assert softmaxes == 6  # one per layer, not the two of the eager within/across mix
    # int8 keeps attention's products and the first and last layers in fp32: 2 per layer + 2 x 6 linear.
    kept = sensitive_matmuls(graph)
    assert len(kept) == 2 * 6 + 2 * 6
    assert all("/layer.0/" in name or "/layer.5/" in name or "/self/MatMul" in name for name in kept)


def test_openvino_refuses_other_devices_and_other_dtypes() -> None:
    with pytest.raises(ValueError, match="runs on the CPU"):
        choose_backend("openvino", "mps", None)
    with pytest.raises(ValueError, match="needs backend='torch'"):
        choose_backend("openvino", "cpu", "bf16")


def test_auto_without_bf16_units_picks_openvino_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16_units", lambda: None)
    assert choose_backend("auto", "cpu", None) == ("openvino", "cpu", "fp32")


def test_auto_with_bf16_units_picks_torch_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hardware, "cpu_bf16_units", lambda: "AMX")
    assert choose_backend("auto", "cpu", None) == ("torch", "cpu", "bf16")
