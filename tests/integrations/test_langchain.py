"""WinnowReranker and WinnowRetriever inside real langchain-core: compressor, LCEL chain, retriever."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableLambda
from readme_examples import run_readme_example

from winnow.integrations.langchain import WinnowReranker, WinnowRetriever
from winnow.pipeline import Pipeline
from winnow.records import Document as WinnowDocument
from winnow.rerank import Reranker
from winnow.retrieve import Index

TEXTS = [
    "SQLite WAL mode lets readers run beside one writer.",
    "BM25 saturates term frequency with the k1 parameter.",
    "Reciprocal rank fusion merges ranked lists.",
    "TLS 1.3 needs one round trip for a full handshake.",
]


@pytest.fixture(scope="module")
def reranker(minilm_cross_encoder: Path) -> Reranker:
    return Reranker(minilm_cross_encoder)


def test_compressor_keeps_metadata_and_adds_scores(reranker: Reranker) -> None:
    docs = [Document(t, id=f"d{i}", metadata={"source": f"s{i}.md", "page": i}) for i, t in enumerate(TEXTS)]
    compressor = WinnowReranker(reranker=reranker, top_n=3)
    assert isinstance(compressor, BaseDocumentCompressor)
    kept = compressor.compress_documents(docs, "how does BM25 count repeated terms?")
    expected = reranker.rerank("how does BM25 count repeated terms?", TEXTS, top_k=3)
    assert [d.page_content for d in kept] == [TEXTS[r.index] for r in expected]
    for doc, result in zip(kept, expected, strict=True):
        original = docs[result.index]
        assert doc.id == original.id and doc.metadata["page"] == original.metadata["page"]
        assert doc.metadata["winnow_score"] == pytest.approx(result.score)
        assert doc.metadata["winnow_probability"] == doc.metadata["relevance_score"] == result.probability
    assert "winnow_score" not in docs[0].metadata  # the caller's documents are not changed
    assert compressor.compress_documents([], "anything") == []

    # In an LCEL chain, after a retriever-like step; and async through the base class.
    chain = RunnableLambda(lambda q: docs) | RunnableLambda(
        lambda found: compressor.compress_documents(found, "tls handshake")
    )
    assert len(chain.invoke("tls handshake")) == 3
    assert len(asyncio.run(compressor.acompress_documents(docs, "tls handshake"))) == 3
    with pytest.raises(ValueError):
        compressor.compress_documents(docs, "  ")
    with pytest.raises(ValueError):
        WinnowReranker(reranker=reranker, top_n=0)


def test_retriever_over_a_winnow_index(reranker: Reranker, tmp_path: Path) -> None:
    with Index.create(tmp_path / "index", chunk_tokens=None) as index:
        index.add(
            [WinnowDocument(id=f"doc{i}", text=t, metadata={"n": str(i)}) for i, t in enumerate(TEXTS)],
            progress=False,
        )
        retriever = WinnowRetriever(pipeline=Pipeline(index, reranker), candidates=4, top_k=2)
        assert isinstance(retriever, BaseRetriever)
        found = retriever.invoke("sqlite readers and writers")
        assert len(found) == 2
        meta = found[0].metadata
        assert meta["doc_id"] == f"doc{meta['n']}" and found[0].page_content == TEXTS[int(meta["n"])]
        assert meta["stage1_rank"] >= 1 and 0 <= meta["winnow_probability"] <= 1
        assert found[0].metadata["winnow_probability"] >= found[1].metadata["winnow_probability"]
        assert [d.id for d in asyncio.run(retriever.ainvoke("sqlite readers and writers"))] == [
            d.id for d in found
        ]
        filtered = WinnowRetriever(pipeline=Pipeline(index, None), top_k=4, filters={"n": "3"})
        assert [d.metadata["doc_id"] for d in filtered.invoke("anything")] == ["doc3"]


def test_readme_langchain_example(tmp_path: Path) -> None:
    lines = run_readme_example("langchain", tmp_path)
    assert lines[0].startswith("bm25.md ") and len(lines) == 3
    assert lines[2] == "sqlite.md"
