"""WinnowRanker as a real haystack-ai component, alone and inside a Haystack Pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.document_stores.in_memory import InMemoryDocumentStore
from readme_examples import run_readme_example

from winnow.integrations.haystack import WinnowRanker
from winnow.rerank import Reranker

TEXTS = [
    "A CDN caches static assets at edge servers near users.",
    "B-tree pages hold sorted keys and child pointers.",
    "DNS resolvers cache answers for the record's TTL.",
]


def test_ranker_in_a_pipeline_after_a_retriever(minilm_cross_encoder: Path) -> None:
    reranker = Reranker(minilm_cross_encoder)
    store = InMemoryDocumentStore()
    store.write_documents([Document(content=t, meta={"n": i}) for i, t in enumerate(TEXTS)])
    pipeline = Pipeline()
    pipeline.add_component("retriever", InMemoryBM25Retriever(store, top_k=3))
    pipeline.add_component("ranker", WinnowRanker(reranker=reranker, top_k=2))
    pipeline.connect("retriever.documents", "ranker.documents")
    query = "what does a cache keep?"
    result = pipeline.run({"retriever": {"query": query}, "ranker": {"query": query}})
    ranked = result["ranker"]["documents"]

    retrieved = pipeline.get_component("retriever").run(query=query)["documents"]
    expected = reranker.rerank(query, [d.content for d in retrieved], top_k=2)
    assert [d.content for d in ranked] == [retrieved[r.index].content for r in expected]
    for doc, r in zip(ranked, expected, strict=True):
        assert doc.score == r.probability and doc.meta["winnow_probability"] == r.probability
        assert doc.meta["n"] == TEXTS.index(doc.content) and doc.id == retrieved[r.index].id
        assert doc.meta["winnow_score"] == pytest.approx(r.score)

    ranker = WinnowRanker(reranker=reranker, top_k=1)
    assert len(retrieved) >= 2
    assert len(ranker.run(query="cache", documents=retrieved)["documents"]) == 1
    assert len(ranker.run(query="cache", documents=retrieved, top_k=5)["documents"]) == len(retrieved)
    assert ranker.run(query="cache", documents=[])["documents"] == []
    assert ranker.to_dict()["init_parameters"] == {"model": None, "top_k": 1}
    with pytest.raises(ValueError):
        ranker.run(query=" ", documents=retrieved)
    with pytest.raises(ValueError):
        WinnowRanker(top_k=0)


def test_readme_haystack_example(tmp_path: Path) -> None:
    lines = run_readme_example("haystack", tmp_path)
    assert len(lines) == 1 and lines[0].startswith(
        "A CDN caches static assets at edge servers near users. en "
    )
