"""The served model's score cache against a live server: a repeated request is answered without a
forward pass and with the same scores, a pair is cached per way of cutting it, and the cache keeps
within its bound."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import httpx
import pytest

from winnow.rerank import Reranker
from winnow.rerank.cache import ScoreCache
from winnow.serve import ServeSettings

from .conftest import DOCUMENTS, QUERY, GatedBackend, LiveServer, start_server

CACHE_ENTRIES = 12


@pytest.fixture(scope="module")
def cached(served_reranker: Reranker) -> Iterator[tuple[LiveServer, GatedBackend, Reranker]]:
    """A service whose reranker has a small score cache and a backend that counts the pairs it runs."""
    counter = GatedBackend(served_reranker.backend)
    reranker = copy.copy(served_reranker)
    reranker.backend = counter
    reranker.cache = ScoreCache(CACHE_ENTRIES)
    live = start_server(ServeSettings(models=("minilm",)), lambda name: reranker)
    yield live, counter, reranker
    live.stop()


def _rerank(live: LiveServer, body: dict, path: str = "/v2/rerank") -> dict:
    reply = httpx.post(live.url + path, json=body, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _counter(live: LiveServer, name: str) -> float:
    lines = httpx.get(live.url + "/metrics", timeout=10).text.splitlines()
    return sum(float(line.split()[-1]) for line in lines if line.startswith(name + "{"))


def test_a_repeated_request_is_answered_from_the_cache(cached, served_reranker: Reranker) -> None:
    live, counter, reranker = cached
    reranker.cache.clear()
    body = {"query": QUERY, "documents": DOCUMENTS}
    rows = counter.rows
    first = _rerank(live, body)
    assert counter.rows == rows + len(DOCUMENTS)
    hits = _counter(live, "winnow_cache_hits_total")

    second = _rerank(live, body)
    assert counter.rows == rows + len(DOCUMENTS), "a cached pair went through the model again"
    assert second["results"] == first["results"]  # the same floats, not merely close ones
    assert _counter(live, "winnow_cache_hits_total") == hits + len(DOCUMENTS)

    expected = served_reranker.rerank(QUERY, DOCUMENTS)  # the model in process, no cache
    assert [r["index"] for r in second["results"]] == [r.index for r in expected]
    assert [r["relevance_score"] for r in second["results"]] == pytest.approx(
        [r.probability for r in expected], abs=1e-4
    )
    tei = _rerank(live, {"query": QUERY, "texts": DOCUMENTS, "raw_scores": True}, "/rerank")
    assert counter.rows == rows + len(DOCUMENTS), "TEI's route cuts documents the same way: cached too"
    assert [r["score"] for r in tei] == pytest.approx([r.score for r in expected], abs=1e-4)


def test_a_pair_runs_once_per_request_and_per_way_of_cutting_it(cached) -> None:
    live, counter, reranker = cached
    reranker.cache.clear()
    rows = counter.rows
    repeated = _rerank(
        live, {"query": "what is a vector space?", "documents": [DOCUMENTS[4], DOCUMENTS[0]] * 2}
    )
    assert counter.rows == rows + 2, "the same pair twice in one request ran twice"
    scores = {r["index"]: r["relevance_score"] for r in repeated["results"]}
    assert scores[0] == scores[2] and scores[1] == scores[3]

    cut = _rerank(
        live, {"query": "what is a vector space?", "documents": [DOCUMENTS[4]], "max_tokens_per_doc": 3}
    )
    assert counter.rows == rows + 3, "a document cut to 3 tokens must not reuse the whole document's score"
    assert cut["meta"]["warnings"] == ["1 of 1 documents were truncated to fit"]
    assert cut["results"][0]["relevance_score"] != scores[0]


def test_the_cache_keeps_within_its_bound(cached) -> None:
    live, counter, reranker = cached
    reranker.cache.clear()
    for round_number in range(4):  # 24 distinct pairs into a cache of 12
        _rerank(live, {"query": f"question {round_number}", "documents": DOCUMENTS})
    assert len(reranker.cache) == CACHE_ENTRIES
    rows = counter.rows
    _rerank(live, {"query": "question 3", "documents": DOCUMENTS})  # the latest pairs are still there
    assert counter.rows == rows
