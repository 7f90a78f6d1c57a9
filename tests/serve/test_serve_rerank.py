"""Rerank over HTTP with clients nobody here wrote: Cohere's SDK and LlamaIndex's TEI postprocessor
get the same order as Reranker.rerank in process; concurrent requests never get each other's answers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import numpy as np
import pytest

from winnow.rerank import Reranker

from .conftest import DOCUMENTS, QUERY


def test_cohere_sdk_gets_the_in_process_order(live_server, served_reranker: Reranker) -> None:
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(base_url=live_server.url, api_key=live_server.settings.api_key, timeout=30)
    model_name = Path(live_server.settings.models[0]).name
    response = client.rerank(model=model_name, query=QUERY, documents=DOCUMENTS, top_n=4)

    expected = served_reranker.rerank(QUERY, DOCUMENTS, top_k=4)
    assert [r.index for r in response.results] == [r.index for r in expected]
    for got, want in zip(response.results, expected, strict=True):
        assert got.relevance_score == pytest.approx(want.probability, abs=1e-4)
    assert response.id and response.meta.api_version.version == "2"


def test_cohere_sdk_sees_unknown_model_as_404(live_server) -> None:
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(base_url=live_server.url, api_key=live_server.settings.api_key, timeout=30)
    with pytest.raises(cohere.errors.NotFoundError) as caught:
        client.rerank(model="rerank-v3.5", query=QUERY, documents=DOCUMENTS)
    assert "unknown model 'rerank-v3.5'" in str(caught.value.body)


def test_cohere_sdk_with_a_wrong_key_is_unauthorized(live_server) -> None:
    cohere = pytest.importorskip("cohere")
    client = cohere.ClientV2(base_url=live_server.url, api_key="not-the-key", timeout=30)
    with pytest.raises(cohere.errors.UnauthorizedError):
        client.rerank(model="any", query=QUERY, documents=DOCUMENTS)


def test_llamaindex_tei_postprocessor_gets_the_in_process_order(live_server, served_reranker) -> None:
    tei = pytest.importorskip("llama_index.postprocessor.tei_rerank")
    from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

    postprocessor = tei.TextEmbeddingInference(
        base_url=live_server.url, top_n=3, auth_token=f"Bearer {live_server.settings.api_key}"
    )
    nodes = [
        NodeWithScore(node=TextNode(text=text, id_=f"n{i}"), score=0.0) for i, text in enumerate(DOCUMENTS)
    ]
    reranked = postprocessor.postprocess_nodes(nodes, query_bundle=QueryBundle(QUERY))

    expected = served_reranker.rerank(QUERY, DOCUMENTS, top_k=3)
    assert [n.node.node_id for n in reranked] == [f"n{r.index}" for r in expected]
    assert [n.score for n in reranked] == pytest.approx([r.probability for r in expected], abs=1e-4)


def test_v1_and_dict_documents_with_return_documents(live_server, served_reranker) -> None:
    documents = [{"text": text, "id": f"d{i}"} for i, text in enumerate(DOCUMENTS)]
    reply = httpx.post(
        f"{live_server.url}/v1/rerank",
        json={"query": QUERY, "documents": documents, "top_n": 2, "return_documents": True},
        headers=live_server.headers(),
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    expected = served_reranker.rerank(QUERY, DOCUMENTS, top_k=2)
    assert [r["index"] for r in body["results"]] == [r.index for r in expected]
    assert [r["document"]["text"] for r in body["results"]] == [r.text for r in expected]
    assert body["meta"]["api_version"]["version"] == "1"


def test_tei_options_raw_scores_text_and_left_truncation(live_server, served_reranker) -> None:
    url, headers = f"{live_server.url}/rerank", live_server.headers()
    raw = httpx.post(
        url,
        json={"query": QUERY, "texts": DOCUMENTS, "raw_scores": True, "return_text": True},
        headers=headers,
        timeout=30,
    ).json()
    logits = served_reranker.score([(QUERY, text) for text in DOCUMENTS])
    assert [r["index"] for r in raw] == list(np.argsort(-logits, kind="stable"))
    assert [r["score"] for r in raw] == pytest.approx([float(logits[r["index"]]) for r in raw], abs=1e-3)
    assert all(r["text"] == DOCUMENTS[r["index"]] for r in raw)

    # Left truncation keeps a long text's last tokens (those that fit beside the query), right its first.
    long_text = "filler words about nothing in particular. " * 40 + DOCUMENTS[1]
    texts = [long_text, DOCUMENTS[5]]
    left = httpx.post(
        url,
        json={"query": QUERY, "texts": texts, "truncation_direction": "Left"},
        headers=headers,
        timeout=30,
    ).json()
    right = httpx.post(url, json={"query": QUERY, "texts": texts}, headers=headers, timeout=30).json()
    tokenizer = served_reranker.tokenizer
    room = served_reranker.max_length - tokenizer.count(QUERY) - 3
    (offsets,) = tokenizer.offsets([long_text])
    tail = long_text[offsets[-room][0] :]
    left_score = next(r["score"] for r in left if r["index"] == 0)
    right_score = next(r["score"] for r in right if r["index"] == 0)
    assert left_score == pytest.approx(served_reranker.rerank(QUERY, [tail])[0].probability, abs=1e-4)
    assert right_score == pytest.approx(served_reranker.rerank(QUERY, [long_text])[0].probability, abs=1e-4)
    assert abs(left_score - right_score) > 1e-4

    refused = httpx.post(
        url, json={"query": QUERY, "texts": texts, "truncate": False}, headers=headers, timeout=30
    )
    assert refused.status_code == 413 and "truncate is false" in refused.json()["error"]


def test_max_tokens_per_doc_cuts_and_reports(live_server, served_reranker) -> None:
    long_text = DOCUMENTS[1] + " " + "more words to cut away " * 50
    reply = httpx.post(
        f"{live_server.url}/v2/rerank",
        json={"query": QUERY, "documents": [long_text, "Bananas."], "max_tokens_per_doc": 8},
        headers=live_server.headers(),
        timeout=30,
    ).json()
    assert reply["meta"]["warnings"] == ["1 of 2 documents were truncated to fit"]
    # The first 8 tokens are "bm25 saturates term frequency with the k1": the same as scoring that text.
    first_eight = long_text[: served_reranker.tokenizer.offsets([long_text])[0][7][1]]
    got = next(r["relevance_score"] for r in reply["results"] if r["index"] == 0)
    assert got == pytest.approx(served_reranker.rerank(QUERY, [first_eight])[0].probability, abs=1e-3)


def test_concurrent_requests_get_their_own_answers(live_server, served_reranker) -> None:
    """16 requests at once, each with its own query and document order: every answer matches its own
    in-process ranking, so pairs packed into shared batches went back to the right request."""
    send_concurrent_requests(live_server, served_reranker)

    metrics = httpx.get(f"{live_server.url}/metrics", headers=live_server.headers(), timeout=10).text
    shared = [
        line
        for line in metrics.splitlines()
        if line.startswith("winnow_batch_requests_bucket") and 'le="1.0"' in line
    ]
    count = [line for line in metrics.splitlines() if line.startswith("winnow_batch_requests_count")]
    assert shared and count and float(shared[0].split()[-1]) < float(count[0].split()[-1]), (
        "no round of the worker served more than one request"
    )


def send_concurrent_requests(server, reranker: Reranker) -> None:
    """16 requests at once to ``server``, each with its own query and document order; asserts every answer
    is its own request's in-process ranking (also used against `winnow serve --ray`)."""
    queries = [
        f"question {i}: " + q
        for i in range(2)
        for q in (QUERY, "capital of France", "potassium fruit", "vector search")
    ] * 2
    rng = np.random.default_rng(0)
    orders = [list(rng.permutation(len(DOCUMENTS))) for _ in queries]

    async def one(client: httpx.AsyncClient, query: str, order: list[int]) -> list[int]:
        reply = await client.post("/rerank", json={"query": query, "texts": [DOCUMENTS[i] for i in order]})
        assert reply.status_code == 200, reply.text
        return [order[r["index"]] for r in reply.json()]

    async def all_at_once() -> list[list[int]]:
        async with httpx.AsyncClient(base_url=server.url, headers=server.headers(), timeout=60) as client:
            return await asyncio.gather(*(one(client, q, o) for q, o in zip(queries, orders, strict=True)))

    got = asyncio.run(all_at_once())
    for query, ranking in zip(queries, got, strict=True):
        assert ranking == [r.index for r in reranker.rerank(query, DOCUMENTS)]


def test_health_and_metrics(live_server) -> None:
    health = httpx.get(f"{live_server.url}/health", timeout=10)  # no key needed
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert httpx.get(f"{live_server.url}/metrics", timeout=10).status_code == 401
    text = httpx.get(f"{live_server.url}/metrics", headers=live_server.headers(), timeout=10).text
    for name in (
        "winnow_requests_total",
        "winnow_stage_duration_seconds_bucket",
        "winnow_batch_pairs_bucket",
        "winnow_queue_depth",
        "winnow_rejected_requests_total",
    ):
        assert name in text
