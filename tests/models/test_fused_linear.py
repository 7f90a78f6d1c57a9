"""Fused bf16 linear layers: what gets replaced, and that the model still computes what it did in fp32."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.stats import kendalltau
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from winnow.models.fused_linear import FusedLinear, fuse_linear_layers
from winnow.rerank import Reranker

pytestmark = pytest.mark.bf16


@pytest.fixture(scope="module")
def scifact_pairs(shared_data: Path) -> list[tuple[str, str]]:
    lines = (shared_data / "beir/scifact/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:24]
    docs = [json.loads(line) for line in lines]
    return [("vitamin D and bone density in older adults", f"{d['title']} {d['text']}") for d in docs]


def _logits(model: torch.nn.Module, tokenizer, pairs: list[tuple[str, str]]) -> np.ndarray:
    batch = tokenizer(
        [q for q, _ in pairs], [p for _, p in pairs], truncation="only_second", max_length=256,
        padding=True, return_tensors="pt",
    )  # fmt: skip
    with torch.inference_mode():
        return model(**batch).logits[:, 0].float().numpy()


def test_bert_layers_are_replaced_and_scores_stay_those_of_fp32(minilm_cross_encoder, scifact_pairs) -> None:
    tokenizer = AutoTokenizer.from_pretrained(minilm_cross_encoder)
    fp32 = AutoModelForSequenceClassification.from_pretrained(minilm_cross_encoder).eval()
    fused = copy.deepcopy(fp32)
    # 6 layers x (query, key, value, attention output, feed-forward in + GELU, feed-forward out),
    # then the pooler and the classifier.
    assert fuse_linear_layers(fused) == 6 * 6 + 2
    assert not any(isinstance(m, torch.nn.Linear) for m in fused.modules())
    intermediate = fused.bert.encoder.layer[0].intermediate
    assert isinstance(intermediate, FusedLinear) and intermediate.gelu
    assert fused.bert.embeddings.word_embeddings.weight.dtype == torch.float32  # the rest stays fp32

    # Closer to fp32 than the whole model cast to bf16: the residual stream and LayerNorm stay fp32.
    whole_bf16 = copy.deepcopy(fp32).to(torch.bfloat16)
    reference = _logits(fp32, tokenizer, scifact_pairs)
    fused_error = np.abs(_logits(fused, tokenizer, scifact_pairs) - reference)
    whole_error = np.abs(_logits(whole_bf16, tokenizer, scifact_pairs) - reference)
    assert fused_error.mean() < whole_error.mean()
    assert fused_error.max() < 0.02 * np.abs(reference).max()


def test_other_activations_keep_their_own_function(minilm_cross_encoder, scifact_pairs) -> None:
    """A tanh-approximated GELU must not become the fused exact GELU: only its linear layer is replaced."""
    tokenizer = AutoTokenizer.from_pretrained(minilm_cross_encoder)
    model = AutoModelForSequenceClassification.from_pretrained(
        minilm_cross_encoder, hidden_act="gelu_new"
    ).eval()
    fused = copy.deepcopy(model)
    fuse_linear_layers(fused)
    intermediate = fused.bert.encoder.layer[0].intermediate
    assert type(intermediate).__name__ == "BertIntermediate"
    assert isinstance(intermediate.dense, FusedLinear) and not intermediate.dense.gelu
    reference, scores = _logits(model, tokenizer, scifact_pairs), _logits(fused, tokenizer, scifact_pairs)
    assert np.abs(scores - reference).max() < 0.02 * np.abs(reference).max()


def test_bf16_reranker_on_a_cpu_runs_fused_and_ranks_like_fp32(minilm_cross_encoder, scifact_pairs) -> None:
    fp32 = Reranker(minilm_cross_encoder, backend="torch", dtype="fp32", device="cpu", cache=0)
    bf16 = Reranker(minilm_cross_encoder, backend="torch", dtype="bf16", device="cpu", cache=0)
    assert any(isinstance(m, FusedLinear) for m in bf16.backend.model.modules())
    # The fixture's head is untrained, so its 24 scores lie close together: ask for near-equal order.
    tau = kendalltau(bf16.score(scifact_pairs), fp32.score(scifact_pairs)).statistic
    assert tau >= 0.95


def test_gated_model_feed_forward_is_fused() -> None:
    """The default model (Winnow's gated architecture) gets its GELU fused too, not only its linears."""
    from winnow.models import resolve_model
    from winnow.rerank.backends.loading import load_sequence_classifier

    model = load_sequence_classifier(resolve_model("winnow-minilm-l6")).eval()
    fuse_linear_layers(model)
    intermediate = model.bert.encoder.layer[0].intermediate
    assert isinstance(intermediate, FusedLinear) and intermediate.gelu
