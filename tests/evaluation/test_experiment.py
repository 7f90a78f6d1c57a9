"""The grid runner and the report on a small slice of SciFact: mechanics, caching, latency, files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from winnow.evaluation.datasets import EvalSet, load_dataset
from winnow.evaluation.experiment import Config, run_grid
from winnow.evaluation.report import markdown, write_report
from winnow.evaluation.scorers import CrossEncoderScorer


@pytest.fixture(scope="module")
def small_scifact(shared_data, tmp_path_factory, monkeypatch_module):
    """Eight SciFact test queries over their relevant abstracts plus 40 others (fast to index)."""
    monkeypatch_module.setenv("WINNOW_DATA_DIR", str(shared_data))
    monkeypatch_module.setenv("WINNOW_CACHE_DIR", str(tmp_path_factory.mktemp("eval-cache")))
    full = load_dataset("scifact")
    query_ids = list(full.queries)[:8]
    keep = {d for q in query_ids for d in full.qrels[q]} | set(list(full.corpus)[:40])
    full.name = "scifact-slice"
    full.queries = {q: full.queries[q] for q in query_ids}
    full.qrels = {q: full.qrels[q] for q in query_ids}
    full.corpus = {d: full.corpus[d][:600] for d in full.corpus if d in keep}
    return full


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


class CountingScorer:
    """The real cross-encoder scorer, counting the pairs it is asked to score."""

    def __init__(self, inner: CrossEncoderScorer) -> None:
        self.inner, self.name, self.key, self.pairs = inner, inner.name, inner.key, 0

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        self.pairs += len(texts)
        return self.inner.score(query, texts)


@pytest.mark.slow
def test_grid_reranks_prefixes_caches_scores_and_writes_a_report(
    small_scifact, minilm_cross_encoder, tmp_path
):
    scorers: list[CountingScorer] = []

    def factory(spec: str, length: int) -> CountingScorer:
        scorers.append(CountingScorer(CrossEncoderScorer(spec, length, dtype="fp32")))
        return scorers[-1]

    settings = dict(depths=[3, 5], reranker=str(minilm_cross_encoder), max_lengths=[64], latency_sample=2)
    first = run_grid(small_scifact, scorer_factory=factory, progress=False, **settings)
    names = [r.config.name for r in first.results]
    assert len(names) == 3 * 2 * 2  # modes × depths × rerank on/off
    assert "hybrid@5 + rerank(64)" in names and "bm25@3" in names
    for mode in ("bm25", "dense", "hybrid"):
        stage1 = first.result(Config(mode, 5))
        reranked = next(
            r for r in first.results if r.config.mode == mode and r.config.depth == 5 and r.config.reranker
        )
        assert stage1.evaluation.valid and reranked.evaluation.valid
        assert stage1.latency_ms["stage1"]["n"] == 8 and stage1.latency_ms["stage1"]["p50"] > 0
        assert reranked.latency_ms["rerank"]["n"] == 2
        assert reranked.latency_ms["rerank"]["p95"] >= reranked.latency_ms["rerank"]["p50"] > 0
        assert set(reranked.evaluation.per_query) == set(small_scifact.queries)
    # Scoring: 8 queries × 5 per mode, less pairs shared by modes; timing: 2 × (3 + 5) + 3 warm-up per mode.
    timing_pairs = 3 * (2 * (3 + 5) + 3)
    assert 8 * 5 + timing_pairs <= scorers[0].pairs <= 3 * 8 * 5 + timing_pairs
    assert first.settings["score_cache_misses"] > 0

    second = run_grid(small_scifact, scorer_factory=factory, progress=False, **settings)
    assert scorers[1].pairs == timing_pairs  # every stored score came from the disk cache; only timing re-ran
    assert second.settings["score_cache_misses"] == 0
    for a, b in zip(first.results, second.results, strict=True):
        assert a.evaluation.mean == pytest.approx(b.evaluation.mean, abs=1e-6)

    tests = {t.metric: t for t in first.significance}
    assert set(tests) == {"nDCG@10", "Recall@5", "MRR@10"}
    assert 0.0 <= tests["nDCG@10"].p_value <= 1.0 and tests["nDCG@10"].queries == 8
    written = write_report(first, tmp_path / "report")
    assert sorted(p.name for p in written) == [
        "depth.png",
        "results.json",
        "summary.md",
        "tradeoff.png",
        "winloss.png",
    ]
    data = json.loads((tmp_path / "report" / "results.json").read_text())
    assert len(data["configurations"]) == 12 and len(data["configurations"][0]["per_query"]) == 8
    summary = markdown(first)
    assert "Recall@5 from" in summary and "| bm25@3 |" in summary


def test_no_overlap_is_reported_as_a_warning_not_a_table_of_zeros():
    """Document ids that do not match the qrels (here a prefix) must not read as a result of 0.0."""
    evalset = EvalSet(
        name="mismatched",
        queries={"q1": "first", "q2": "second"},
        qrels={"q1": {"doc-1": 1}, "q2": {"doc-2": 1}},
        corpus={"1": "one", "2": "two"},
        candidates={"q1": [("1", 2.0), ("2", 1.0)], "q2": [("2", 2.0), ("1", 1.0)]},
    )
    result = run_grid(evalset, depths=[2], progress=False)
    assert [r.config.name for r in result.results] == ["supplied@2"]
    assert any("shares no document with the qrels" in w for w in result.warnings)
    assert not result.results[0].evaluation.valid
    summary = markdown(result)
    assert "no overlap" in summary and "No result" in summary


class LengthScorer:
    """Scores a passage by its length: a stand-in reranker whose order is known in advance."""

    name = key = "length"

    def __init__(self, sign: float) -> None:
        self.sign = sign

    def score(self, query: str, texts: list[str]) -> np.ndarray:
        return np.array([self.sign * len(t) for t in texts], dtype=np.float32)


@pytest.mark.parametrize(("sign", "verdict"), [(1.0, True), (-1.0, False)])
def test_summary_says_plainly_when_reranking_loses_to_stage_one(sign, verdict):
    """The relevant passage is the short one and stage 1 ranks it first in one query, last in the other."""
    evalset = EvalSet(
        name="toy",
        queries={"q1": "first", "q2": "second"},
        qrels={"q1": {"a": 1}, "q2": {"d": 1}},
        corpus={"a": "a", "b": "bbbb", "c": "cccccc", "d": "d"},
        candidates={"q1": [("a", 3.0), ("b", 2.0), ("c", 1.0)], "q2": [("d", 3.0), ("b", 2.0), ("c", 1.0)]},
    )
    result = run_grid(
        evalset,
        depths=[3],
        reranker="length",
        max_lengths=[16],
        latency_sample=1,
        progress=False,
        use_cache=False,
        scorer_factory=lambda spec, length: LengthScorer(sign),
    )
    reranked = result.best(reranked=True).evaluation.mean["nDCG@10"]
    assert (reranked < 1.0) == verdict  # longest first buries the relevant passage; shortest first keeps it
    assert ("Reranking does not pay here" in markdown(result)) == verdict
