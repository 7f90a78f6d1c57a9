"""The gated cross-encoder starts as its bi-encoder: same ranking, same scores, loads in Winnow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from winnow import Reranker
from winnow.models.gated_cross_encoder import (
    GatedBertForSequenceClassification,
    from_bi_encoder,
    shut_small_gates,
)

QUERY = "how do tides work"
PASSAGES = [
    "Tides are caused by the gravitational pull of the moon and the sun on the oceans.",
    "The stock market fell sharply on Tuesday after the bank raised interest rates again.",
    "Ocean water rises and falls twice a day because of lunar gravity.",
    "Tides.",
]


@pytest.fixture(scope="module")
def bi_encoder_dir() -> Path:
    from winnow.models import resolve_model

    return resolve_model("all-minilm-l6")


@pytest.fixture(scope="module")
def gated_dir(bi_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer

    target = tmp_path_factory.mktemp("gated")
    from_bi_encoder(str(bi_encoder_dir)).save_pretrained(target)
    AutoTokenizer.from_pretrained(bi_encoder_dir).save_pretrained(target)
    return target


def bi_encoder_cosines(bi_encoder_dir: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(bi_encoder_dir), device="cpu")
    vectors = model.encode([QUERY, *PASSAGES], normalize_embeddings=True)
    return vectors[1:] @ vectors[0]


def test_untrained_model_scores_exactly_as_the_bi_encoder(bi_encoder_dir: Path) -> None:
    from transformers import AutoTokenizer

    model = from_bi_encoder(str(bi_encoder_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(bi_encoder_dir)
    # One padded batch of passages of very different lengths: the passage's own [CLS] and positions
    # must land in the right place in every row.
    batch = tokenizer([QUERY] * len(PASSAGES), PASSAGES, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits.squeeze(-1).numpy()
    config = model.config
    expected = config.similarity_scale * bi_encoder_cosines(bi_encoder_dir) + config.similarity_bias
    np.testing.assert_allclose(logits, expected, atol=1e-4)


def test_reranker_loads_the_saved_model_and_keeps_the_bi_encoder_order(
    gated_dir: Path, bi_encoder_dir: Path
) -> None:
    reranker = Reranker(str(gated_dir), backend="torch", dtype="fp32", cache=0)
    assert isinstance(reranker.backend.model, GatedBertForSequenceClassification)
    ranking = reranker.rerank(QUERY, PASSAGES)
    expected_order = list(np.argsort(-bi_encoder_cosines(bi_encoder_dir), kind="stable"))
    assert [r.index for r in ranking] == expected_order
    for result in ranking:
        assert result.probability == pytest.approx(1 / (1 + np.exp(-result.score)), abs=1e-6)


def test_full_length_pairs_score_beside_padded_ones(gated_dir: Path) -> None:
    """A 512-token pair plus the inserted passage [CLS] is one slot longer than the position table."""
    long_passage = " ".join(["tides rise and fall with the moon"] * 120)
    reranker = Reranker(str(gated_dir), backend="torch", dtype="fp32", max_length=512, cache=0)
    together = reranker.score([(QUERY, long_passage), (QUERY, PASSAGES[0])])
    alone = [reranker.score([(QUERY, text)])[0] for text in (long_passage, PASSAGES[0])]
    np.testing.assert_allclose(together, alone, atol=1e-4)


@pytest.mark.bf16
def test_bf16_keeps_the_fp32_order(gated_dir: Path) -> None:
    fp32 = Reranker(str(gated_dir), backend="torch", dtype="fp32", cache=0).rerank(QUERY, PASSAGES)
    bf16 = Reranker(str(gated_dir), backend="torch", dtype="bf16", cache=0).rerank(QUERY, PASSAGES)
    assert [r.index for r in bf16] == [r.index for r in fp32]


def test_onnx_export_agrees_with_torch(gated_dir: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path))
    torch_scores = Reranker(str(gated_dir), backend="torch", dtype="fp32", cache=0).score(
        [(QUERY, p) for p in PASSAGES]
    )
    onnx_scores = Reranker(str(gated_dir), backend="onnx", cache=0).score([(QUERY, p) for p in PASSAGES])
    np.testing.assert_allclose(onnx_scores, torch_scores, atol=1e-3)


def test_a_base_without_bert_weights_is_refused(tmp_path: Path, bi_encoder_dir: Path) -> None:
    import shutil

    shutil.copy(bi_encoder_dir / "config.json", tmp_path / "config.json")
    from safetensors.torch import save_file

    save_file({"unrelated.weight": torch.zeros(2)}, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="does not hold BERT weights"):
        from_bi_encoder(str(tmp_path))


def test_fused_attention_equals_the_explicit_mix_once_gates_open(gated_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gated_dir)
    batch = tokenizer([QUERY] * len(PASSAGES), PASSAGES, padding=True, return_tensors="pt")
    logits = {}
    for implementation in ("eager", "sdpa"):
        model = AutoModelForSequenceClassification.from_pretrained(
            gated_dir, attn_implementation=implementation
        ).eval()
        with torch.no_grad():
            logits[f"{implementation} shut"] = model(**batch).logits
            for layer in model.bert.encoder.layer:
                heads = model.config.num_attention_heads
                layer.attention.self.cross_gate.copy_(torch.linspace(0.0, 1.0, heads))
            logits[implementation] = model(**batch).logits
    torch.testing.assert_close(logits["sdpa"], logits["eager"], atol=1e-4, rtol=1e-4)
    # Open gates really let the query and passage attend to each other: the scores move.
    assert (logits["sdpa"] - logits["sdpa shut"]).abs().max() > 0.1


@pytest.mark.parametrize("implementation", ["eager", "sdpa"])
def test_shut_and_negative_gates_still_get_a_gradient(gated_dir: Path, implementation: str) -> None:
    """Training must be able to open a gate that starts at 0, or that was pushed below 0 on the way."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gated_dir)
    model = AutoModelForSequenceClassification.from_pretrained(gated_dir, attn_implementation=implementation)
    model.train()
    gates = [layer.attention.self.cross_gate for layer in model.bert.encoder.layer]
    with torch.no_grad():
        gates[1].fill_(-0.05)
    batch = tokenizer([QUERY] * len(PASSAGES), PASSAGES, padding=True, return_tensors="pt")
    model(**batch).logits.sum().backward()
    for gate in gates:
        assert gate.grad is not None and gate.grad.abs().max() > 0


def test_shutting_small_gates_zeroes_only_them_and_saves_an_attention_call(
    gated_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gated_dir)
    model = AutoModelForSequenceClassification.from_pretrained(gated_dir, attn_implementation="sdpa").eval()
    batch = tokenizer([QUERY] * len(PASSAGES), PASSAGES, padding=True, return_tensors="pt")
    gates = [layer.attention.self.cross_gate for layer in model.bert.encoder.layer]
    heads = model.config.num_attention_heads
    with torch.no_grad():
        for gate in gates:
            gate.copy_(torch.linspace(-0.01, 0.02, heads))
        tiny_open = model(**batch).logits
        gates[0][0] = 0.5

    assert shut_small_gates(model, below=0.05) == len(gates) * heads - 1
    assert gates[0][0].item() == 0.5 and all((g[1:] == 0).all() for g in gates)
    with torch.no_grad():
        gates[0][0] = 0.0
    calls = []
    attend = torch.nn.functional.scaled_dot_product_attention

    def counted(*args, **kwargs):
        calls.append(1)
        return attend(*args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counted)
    with torch.no_grad():
        shut = model(**batch).logits
    assert len(calls) == len(gates)  # one attention call per layer instead of two
    # Gates of 0.02 or less barely mattered: same order, logits (about 20 x cosine) within 0.2.
    assert torch.equal(shut.argsort(dim=0), tiny_open.argsort(dim=0))
    torch.testing.assert_close(shut, tiny_open, atol=0.2, rtol=0)

    with pytest.raises(ValueError, match="only a gated cross-encoder"):
        shut_small_gates(torch.nn.Linear(2, 1), below=0.05)


LEXICAL_COLLECTION = [*PASSAGES, "The moon orbits the earth.", "Gravity pulls the oceans toward the moon."]


@pytest.fixture(scope="module")
def lexical_dir(bi_encoder_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer

    from winnow.models.gated_cross_encoder import set_lexical_idf

    target = tmp_path_factory.mktemp("lexical")
    tokenizer = AutoTokenizer.from_pretrained(bi_encoder_dir)
    model = from_bi_encoder(str(bi_encoder_dir), lexical_match=True, lexical_weight=0.5)
    assert set_lexical_idf(model, tokenizer, LEXICAL_COLLECTION) == len(LEXICAL_COLLECTION)
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def reference_bm25(tokenizer, query: str, passage: str, collection: list[str]) -> float:
    """BM25 (k1 1.2, b 0.75) over word pieces, written out term by term."""
    import math
    from collections import Counter

    special = set(tokenizer.all_special_ids)

    def pieces(text: str) -> list[int]:
        return [i for i in tokenizer(text, add_special_tokens=False)["input_ids"] if i not in special]

    documents = [pieces(text) for text in collection]
    average_length = sum(map(len, documents)) / len(documents)
    counts = Counter(pieces(passage))
    length = sum(counts.values())
    total = 0.0
    for term in set(pieces(query)):
        if term in counts:
            df = sum(term in document for document in documents)
            idf = math.log(1 + (len(documents) - df + 0.5) / (df + 0.5))
            tf = counts[term]
            total += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / average_length))
    return total


def test_lexical_term_is_word_piece_bm25_added_to_the_bi_encoder_logit(
    lexical_dir: Path, bi_encoder_dir: Path
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(lexical_dir)
    model = AutoModelForSequenceClassification.from_pretrained(lexical_dir).eval()
    query = "moon tides: how does moon gravity move tides"  # repeated query terms count once
    batch = tokenizer([query] * len(PASSAGES), PASSAGES, padding=True, return_tensors="pt")
    with torch.no_grad():
        logits = model(**batch).logits.squeeze(-1).numpy()
    plain = from_bi_encoder(str(bi_encoder_dir)).eval()
    with torch.no_grad():
        cosine_logits = plain(**batch).logits.squeeze(-1).numpy()
    bm25 = np.array([reference_bm25(tokenizer, query, p, LEXICAL_COLLECTION) for p in PASSAGES])
    assert bm25[1] == 0.0 and bm25[0] > 0.0  # the stock-market passage shares no word with the query
    np.testing.assert_allclose(logits, cosine_logits + 0.5 * bm25, atol=1e-4)


def test_lexical_model_scores_the_same_alone_padded_and_in_onnx(
    lexical_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path))
    pairs = [(QUERY, p) for p in PASSAGES]
    fp32 = Reranker(str(lexical_dir), backend="torch", dtype="fp32", cache=0)
    together = fp32.score(pairs)
    alone = [fp32.score([pair])[0] for pair in pairs]
    np.testing.assert_allclose(together, alone, atol=1e-4)
    onnx_scores = Reranker(str(lexical_dir), backend="onnx", cache=0).score(pairs)
    np.testing.assert_allclose(onnx_scores, together, atol=1e-3)


@pytest.mark.bf16
def test_lexical_model_keeps_the_fp32_order_in_bf16(lexical_dir: Path) -> None:
    together = Reranker(str(lexical_dir), backend="torch", dtype="fp32", cache=0).score(
        [(QUERY, p) for p in PASSAGES]
    )
    bf16 = Reranker(str(lexical_dir), backend="torch", dtype="bf16", cache=0).rerank(QUERY, PASSAGES)
    assert [r.index for r in bf16] == list(np.argsort(-np.asarray(together), kind="stable"))


def test_idf_needs_a_lexical_model_and_some_text(bi_encoder_dir: Path) -> None:
    from transformers import AutoTokenizer

    from winnow.models.gated_cross_encoder import set_lexical_idf

    tokenizer = AutoTokenizer.from_pretrained(bi_encoder_dir)
    with pytest.raises(ValueError, match="without lexical_match"):
        set_lexical_idf(from_bi_encoder(str(bi_encoder_dir)), tokenizer, PASSAGES)
    with pytest.raises(ValueError, match="no text"):
        set_lexical_idf(from_bi_encoder(str(bi_encoder_dir), lexical_match=True), tokenizer, ["", "[SEP]"])
