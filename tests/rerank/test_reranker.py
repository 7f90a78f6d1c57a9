"""Stage 2 mechanics on a real BERT cross-encoder (all-MiniLM-L6-v2 weights, seeded head)."""

from __future__ import annotations

import asyncio
import copy
import time

import numpy as np
import pytest
from scipy.stats import kendalltau

from winnow import ModelNotFoundError, Ranking, Reranker, ScoreCache
from winnow.models.batching import token_budget_batches
from winnow.rerank.encoding import encode_pairs

QUERY = "How do vaccines train the immune system?"
DOCS = [
    "Vaccines expose the immune system to a harmless antigen so it builds memory cells.",
    "The Eiffel Tower was finished in 1889 for the World's Fair in Paris.",
    "Antibodies produced after vaccination recognise the pathogen on later exposure.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Herd immunity protects people who cannot be vaccinated.",
    "A sourdough starter is a culture of wild yeast and lactic acid bacteria.",
    "T cells remember antigens and respond faster the second time.",
    "Rust's borrow checker prevents data races at compile time.",
]


@pytest.fixture(scope="module")
def fp32(minilm_cross_encoder) -> Reranker:
    return Reranker(minilm_cross_encoder, backend="torch", dtype="fp32")


def test_results_point_back_to_inputs_and_are_sorted(fp32):
    ranking = fp32.rerank(QUERY, DOCS)
    assert isinstance(ranking, Ranking)
    assert sorted(r.index for r in ranking) == list(range(len(DOCS)))
    assert all(r.document is DOCS[r.index] and r.text == DOCS[r.index] for r in ranking)
    scores = [r.score for r in ranking]
    assert scores == sorted(scores, reverse=True)
    direct = fp32.score([(QUERY, d) for d in DOCS])
    for result in ranking:
        assert result.score == pytest.approx(float(direct[result.index]), abs=1e-5)
        assert result.probability == pytest.approx(1 / (1 + np.exp(-result.score)), abs=1e-6)


def test_token_budget_batches_equal_one_by_one_scoring(minilm_cross_encoder, shared_data):
    import json

    lines = (shared_data / "beir/scifact/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:24]
    texts = [json.loads(line)["text"] for line in lines]
    batched = Reranker(minilm_cross_encoder, backend="torch", dtype="fp32", batch_tokens=4096, cache=0)
    pairs = [(QUERY, t) for t in texts]
    together = batched.score(pairs)
    one_by_one = np.array([batched.score([pair])[0] for pair in pairs])
    np.testing.assert_allclose(together, one_by_one, atol=1e-4)


def test_batches_respect_the_budget_and_cover_every_input():
    lengths = [5, 300, 40, 512, 41, 7, 300, 120]
    batches = token_budget_batches(lengths, batch_tokens=700)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 700
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)
    with pytest.raises(ValueError):
        token_budget_batches(lengths, 0)


def test_truncation_cuts_the_document_never_the_query(fp32):
    long_doc = "Immunology " + "memory cells and antibodies " * 200
    encoded = encode_pairs(fp32.tokenizer, [QUERY], [long_doc], max_length=64)
    query_ids = fp32.tokenizer.backend_tokenizer.encode(QUERY, add_special_tokens=False).ids
    ids = encoded.input_ids[0]
    assert len(ids) == 64
    assert ids[1 : 1 + len(query_ids)] == query_ids
    assert encoded.truncated == [True]
    short = Reranker(fp32.model_dir, backend="torch", dtype="fp32", max_length=64)
    ranking = short.rerank(QUERY, [long_doc, DOCS[0]])
    assert ranking.truncated == 1
    assert {r.index: r.truncated for r in ranking} == {0: True, 1: False}


def test_query_longer_than_half_the_budget_is_refused(fp32):
    short = Reranker(fp32.model_dir, backend="torch", dtype="fp32", max_length=32)
    with pytest.raises(ValueError, match=r"query is .* tokens"):
        short.rerank("immune " * 40, DOCS)


def test_windows_score_long_documents_and_return_the_best_span(fp32):
    filler = "The committee met on Tuesday and discussed the budget for next year. " * 30
    key = "Vaccines train memory B and T cells so the immune system reacts faster. "
    document = filler + key + filler
    windowed = Reranker(
        fp32.model_dir, backend="torch", dtype="fp32", max_length=96, windows=True, window_overlap=16
    )
    result = windowed.rerank(QUERY, [document])[0]
    assert result.truncated is False
    start, end = result.span
    assert 0 <= start < end <= len(document)
    encoded = encode_pairs(windowed.tokenizer, [QUERY], [document], 96, windows=True, window_overlap=16)
    assert len(encoded.input_ids) > 5
    window_scores = windowed.score([(QUERY, document[s:e]) for s, e in encoded.spans])
    assert result.score == pytest.approx(float(window_scores.max()), abs=2e-3)
    best = encoded.spans[int(np.argmax(window_scores))]
    assert (start, end) == best
    capped = Reranker(
        fp32.model_dir,
        backend="torch",
        dtype="fp32",
        max_length=96,
        windows=True,
        window_overlap=16,
        max_windows=2,
    )
    assert capped.rerank(QUERY, [document])[0].truncated is True


def test_cache_serves_repeated_candidates(minilm_cross_encoder):
    cache = ScoreCache(max_entries=6)
    reranker = Reranker(minilm_cross_encoder, backend="torch", dtype="fp32", cache=cache)
    first = reranker.rerank(QUERY, DOCS[:4])
    assert first.cache_hits == 0 and cache.misses == 4
    second = reranker.rerank(QUERY, DOCS[:4])
    assert second.cache_hits == 4 and cache.hits == 4
    assert [r.score for r in first] == [r.score for r in second]
    assert reranker.rerank("a different query about plants", DOCS[:4]).cache_hits == 0
    assert len(cache) == 6  # bounded: the oldest entries were evicted
    assert cache.stats() == {"entries": 6, "hits": 4, "misses": 8}


def test_onnx_matches_torch_in_fp32(minilm_cross_encoder, fp32, tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path))
    onnx = Reranker(minilm_cross_encoder, backend="onnx")
    pairs = [(QUERY, d) for d in DOCS]
    np.testing.assert_allclose(onnx.score(pairs), fp32.score(pairs), atol=1e-3)
    exported = list((tmp_path / "onnx").glob("*/model.onnx"))
    assert len(exported) == 1
    mtime = exported[0].stat().st_mtime
    Reranker(minilm_cross_encoder, backend="onnx")  # reuses the cached export
    assert exported[0].stat().st_mtime == mtime
    int8 = Reranker(minilm_cross_encoder, backend="onnx-int8")
    tau = kendalltau(int8.score(pairs), fp32.score(pairs)).statistic
    assert tau > 0.6


@pytest.mark.bf16
def test_bf16_ranks_like_fp32(minilm_cross_encoder, fp32, shared_data):
    import json

    lines = (shared_data / "beir/scifact/corpus.jsonl").read_text(encoding="utf-8").splitlines()[:30]
    texts = [json.loads(line)["title"] + " " + json.loads(line)["text"] for line in lines]
    bf16 = Reranker(minilm_cross_encoder, backend="torch", dtype="bf16")
    pairs = [(QUERY, t) for t in texts]
    tau = kendalltau(bf16.score(pairs), fp32.score(pairs)).statistic
    assert tau >= 0.9


def test_bad_input_gets_clear_errors(fp32):
    with pytest.raises(ValueError, match="query is empty"):
        fp32.rerank("   ", DOCS)
    with pytest.raises(TypeError, match="query must be a string"):
        fp32.rerank(None, DOCS)  # type: ignore[arg-type]
    assert len(fp32.rerank(QUERY, [])) == 0
    with pytest.raises(TypeError, match="document 1 is None"):
        fp32.rerank(QUERY, ["fine", None])
    with pytest.raises(TypeError, match="document 2 is a dict without"):
        fp32.rerank(QUERY, ["a", {"text": "b"}, {"body": "c"}])
    with pytest.raises(TypeError, match="document 0 is a int"):
        fp32.rerank(QUERY, [42])
    with pytest.raises(TypeError, match="list of documents"):
        fp32.rerank(QUERY, "a single string")  # type: ignore[arg-type]
    for bad_k in (0, -3):
        with pytest.raises(ValueError, match="top_k"):
            fp32.rerank(QUERY, DOCS, top_k=bad_k)
    assert len(fp32.rerank(QUERY, DOCS, top_k=100)) == len(DOCS)
    assert len(fp32.rerank(QUERY, DOCS, top_k=3)) == 3


def test_documents_of_any_shape_come_back_untouched(fp32):
    class Passage:
        def __init__(self, text: str) -> None:
            self.text = text

    documents = [{"id": "a", "text": DOCS[0], "metadata": {"source": "wiki"}}, Passage(DOCS[1]), DOCS[2]]
    before = copy.deepcopy(documents[0])
    ranking = fp32.rerank(QUERY, documents)
    assert {id(r.document) for r in ranking} == {id(d) for d in documents}
    assert documents[0] == before


def test_a_one_megabyte_document_is_truncated_quickly(fp32):
    huge = "antibodies " * 100_000
    start = time.perf_counter()
    ranking = fp32.rerank(QUERY, [huge, DOCS[0]])
    assert time.perf_counter() - start < 30
    assert ranking.truncated == 1


def test_unknown_and_missing_models_name_themselves(minilm_cross_encoder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a hub id not in the cache is not fetched offline
    with pytest.raises(ModelNotFoundError, match=r"Known short names: .*minilm-l6"):
        Reranker("no-such-model")
    with pytest.raises(ModelNotFoundError, match=r"some-org/not-downloaded.*HF_HUB_OFFLINE.*hf download"):
        Reranker("some-org/not-downloaded")
    with pytest.raises(ModelNotFoundError, match=r"no model directory at .*runs/missing/model"):
        Reranker("runs/missing/model")
    from winnow.models import resolve_model

    with pytest.raises(ValueError, match="not a cross-encoder"):
        Reranker(resolve_model("all-minilm-l6"))


def test_two_label_models_use_the_positive_logit(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from winnow.models import resolve_model

    torch.manual_seed(1)
    base = resolve_model("all-minilm-l6")
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=2).eval()
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(base).save_pretrained(tmp_path)
    reranker = Reranker(tmp_path, backend="torch", dtype="fp32")
    inputs = AutoTokenizer.from_pretrained(tmp_path)([QUERY], [DOCS[0]], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits[0]
    result = reranker.rerank(QUERY, [DOCS[0]])[0]
    assert result.score == pytest.approx(float(logits[1]), abs=1e-4)
    assert result.probability == pytest.approx(float(torch.softmax(logits, -1)[1]), abs=1e-4)


def test_arerank_does_not_block_the_event_loop(fp32):
    async def main() -> tuple[int, Ranking]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        task = asyncio.create_task(ticker())
        fresh = [f"{text} (variant {i})" for i, text in enumerate(DOCS * 4)]  # not in the cache
        ranking = await fp32.arerank(QUERY, fresh)
        task.cancel()
        return ticks, ranking

    ticks, ranking = asyncio.run(main())
    assert len(ranking) == len(DOCS) * 4
    assert ticks > 3


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_path_ranks_like_cpu_fp32(minilm_cross_encoder, fp32):
    gpu = Reranker(minilm_cross_encoder, device="cuda")
    assert gpu.device == "cuda" and gpu.dtype in ("bf16", "fp16")
    pairs = [(QUERY, d) for d in DOCS]
    assert kendalltau(gpu.score(pairs), fp32.score(pairs)).statistic >= 0.9
