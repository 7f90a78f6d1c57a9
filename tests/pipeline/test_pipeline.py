"""Pipeline: stage 1 from the index, stage 2 from a real cross-encoder, and candidates from elsewhere."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from winnow.pipeline import Pipeline
from winnow.rerank import Reranker
from winnow.retrieve import Index
from winnow.retrieve.ingest import iter_documents

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "winnow" / "data" / "sample_corpus"


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory):
    with Index.create(tmp_path_factory.mktemp("pipeline") / "index", chunk_tokens=None) as idx:
        idx.add(iter_documents([SAMPLE]), progress=False)
        yield idx


@pytest.fixture(scope="module")
def reranker(minilm_cross_encoder: Path) -> Reranker:
    return Reranker(minilm_cross_encoder)


def test_search_reranks_stage1_candidates(index: Index, reranker: Reranker) -> None:
    query = "how does TLS 1.3 reduce handshake round trips?"
    pipeline = Pipeline(index, reranker)
    response = pipeline.search(query, candidates=20, top_k=5, filters={"topic": "networking"})
    assert len(response) == 5 and response.candidates == 13  # all 13 networking documents
    assert [r.rank for r in response] == [1, 2, 3, 4, 5]
    assert set(response.timings) == {"stage1_ms", "rerank_ms", "total_ms"}
    assert response.timings["total_ms"] >= response.timings["rerank_ms"] > 0

    stage1 = index.search(query, k=20, filters={"topic": "networking"})
    expected = reranker.rerank(query, stage1, top_k=5)
    assert [r.chunk_id for r in response] == [stage1[r.index].chunk_id for r in expected]
    for result, reference in zip(response, expected, strict=True):
        assert result.score == pytest.approx(reference.score)
        assert result.probability == pytest.approx(reference.probability)
        assert result.stage1_rank == reference.index + 1
        assert result.stage1_score == pytest.approx(stage1[reference.index].score)
        assert result.metadata["topic"] == "networking" and result.title and result.source
        document = index.get_document(result.doc_id)
        assert document.text[result.span[0] : result.span[1]] == result.text


def test_without_reranker_results_keep_stage1_order(index: Index) -> None:
    response = Pipeline(index, None).search("pgvector HNSW index", candidates=10, top_k=3)
    assert [r.stage1_rank for r in response] == [1, 2, 3]
    assert all(r.score is None and r.probability is None for r in response)


def test_rerank_accepts_candidates_from_any_store(reranker: Reranker) -> None:
    external = [
        {"id": "a", "text": "Bananas are rich in potassium.", "score": 0.9, "metadata": {"shelf": 1}},
        {"id": "b", "text": "TLS 1.3 completes a full handshake in one round trip.", "score": 0.5},
        {"id": "c", "text": "The Rhine flows through Basel.", "score": 0.1},
    ]
    pipeline = Pipeline(None, reranker)
    response = pipeline.rerank("TLS handshake round trips", external, top_k=3)
    direct = reranker.rerank("TLS handshake round trips", external)
    assert [r.doc_id for r in response] == [external[r.index]["id"] for r in direct]
    by_id = {r.doc_id: r for r in response}
    assert (
        by_id["a"].stage1_rank == 1 and by_id["a"].stage1_score == 0.9 and by_id["a"].metadata == {"shelf": 1}
    )
    assert by_id["c"].candidate is external[2]
    strings = pipeline.rerank("TLS handshake", ["plain one", "plain two"], top_k=1)
    assert len(strings) == 1 and strings[0].text in {"plain one", "plain two"}
    with pytest.raises(ValueError, match="no index"):
        pipeline.search("anything")
    with pytest.raises(ValueError, match="query is empty"):
        pipeline.rerank(" ", external)


def test_async_variants_match_sync(index: Index, reranker: Reranker) -> None:
    pipeline = Pipeline(index, reranker)
    query = "autovacuum dead tuples"
    sync = pipeline.search(query, candidates=10, top_k=3)

    async def both():
        return await asyncio.gather(
            pipeline.asearch(query, candidates=10, top_k=3),
            pipeline.arerank(query, [{"text": "VACUUM removes dead tuples."}, {"text": "Bananas."}], top_k=2),
        )

    searched, reranked = asyncio.run(both())
    assert [r.chunk_id for r in searched] == [r.chunk_id for r in sync]
    assert len(reranked) == 2
