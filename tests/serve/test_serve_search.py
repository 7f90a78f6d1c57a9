"""/v1/search and /v1/ask over a real index: the same results as the Pipeline in process, per-stage
timings, and answers as JSON or as Server-Sent Events."""

from __future__ import annotations

import json

import httpx
import pytest

from winnow.pipeline import Pipeline
from winnow.retrieve import Index

QUERY = "how does TLS 1.3 reduce handshake round trips?"


def test_search_matches_the_pipeline_in_process(search_server, served_reranker, sample_index_dir) -> None:
    body = {"query": QUERY, "candidates": 20, "top_k": 5, "filters": {"topic": "networking"}}
    reply = httpx.post(
        f"{search_server.url}/v1/search", json=body, headers=search_server.headers(), timeout=60
    )
    assert reply.status_code == 200, reply.text
    got = reply.json()

    with Index.open(sample_index_dir) as index:
        expected = Pipeline(index, served_reranker).search(
            QUERY, candidates=20, top_k=5, filters={"topic": "networking"}
        )
    assert [r["chunk_id"] for r in got["results"]] == [r.chunk_id for r in expected]
    assert [r["rank"] for r in got["results"]] == [1, 2, 3, 4, 5]
    for result, reference in zip(got["results"], expected, strict=True):
        assert result["stage1_rank"] == reference.stage1_rank
        assert result["probability"] == pytest.approx(reference.probability, abs=1e-4)
        assert result["metadata"] == {"topic": "networking"} and result["source"]
        assert result["updated_at"] == reference.updated_at and result["authority"] == reference.authority
        assert result["span"] == list(reference.span)
    assert got["candidates"] == expected.candidates and got["confident"] is True
    assert set(got["timings"]) == {"stage1_ms", "rerank_ms", "total_ms"}


def test_search_abstains_below_min_confidence(search_server) -> None:
    body = {"query": QUERY, "min_confidence": 1.0, "mode": "bm25"}
    got = httpx.post(
        f"{search_server.url}/v1/search", json=body, headers=search_server.headers(), timeout=60
    ).json()
    assert got["confident"] is False and got["results"] == [] and got["abstention"]


def test_search_with_a_bad_filter_is_400(search_server) -> None:
    reply = httpx.post(
        f"{search_server.url}/v1/search",
        json={"query": QUERY, "filters": {"updated_after": "soon"}},
        headers=search_server.headers(),
        timeout=60,
    )
    assert reply.status_code == 400 and reply.json()["error"]


def test_ask_answers_with_citations(search_server) -> None:
    body = {"question": QUERY, "top_k": 3, "candidates": 10}
    got = httpx.post(
        f"{search_server.url}/v1/ask", json=body, headers=search_server.headers(), timeout=60
    ).json()
    assert got["mode"] == "extractive" and got["citations"]
    numbers = {source["number"] for source in got["sources"]}
    assert set(got["citations"]) <= numbers
    assert all(f"[{n}]" in got["text"] for n in got["citations"])


def test_ask_streams_server_sent_events(search_server) -> None:
    body = {"question": QUERY, "top_k": 3, "candidates": 10, "stream": True}
    events = []
    with httpx.stream(
        "POST", f"{search_server.url}/v1/ask", json=body, headers=search_server.headers(), timeout=60
    ) as reply:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in reply.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                events.append((event, json.loads(line.removeprefix("data: "))))
    assert events[-1][0] == "answer" and events[-1][1]["citations"]
