"""Every vector-database adapter against its real engine, fed to the reranker through one Protocol.

Chroma runs embedded on disk, Milvus as Milvus Lite (one local file), PostgreSQL + pgvector as the
server .ci/run starts (found through WINNOW_TEST_PG_DSN), Pinecone as the loopback server that checks
its documented request shape (tests/stores/test_pinecone.py). Each gets the same documents and must give
the same dense ranking as Winnow's own index, since all embed with the same model.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from winnow.pipeline import Pipeline
from winnow.records import Document
from winnow.rerank import Reranker
from winnow.retrieve import Index
from winnow.retrieve.ingest import iter_documents
from winnow.stores import CandidateSource
from winnow.stores.chunked import ChunkedStore

from .test_pinecone import API_KEY, PineconeServer

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "winnow" / "data" / "sample_corpus"
PICKED = (
    "networking/tls-13-handshake.md",
    "networking/tcp-handshake.md",
    "networking/quic-http3.md",
    "networking/dns-resolution.txt",
    "python/asyncio-event-loop.md",
    "python/python-gil.md",
    "python/pytest-fixtures.md",
    "python/python-typing.md",
)
ENGINES = ("chroma", "milvus", "pgvector", "pinecone")


@pytest.fixture(scope="module")
def documents() -> list[Document]:
    docs = {d.id: d for d in iter_documents([SAMPLE])}
    return [docs[doc_id] for doc_id in PICKED]


@pytest.fixture(scope="module")
def own_ranking(documents: list[Document], tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    with Index.create(tmp_path_factory.mktemp("index") / "index", chunk_tokens=None) as index:
        index.add(documents, progress=False)
        return [h.doc_id for h in index.search("TLS 1.3 handshake round trips", k=5, mode="dense")]


def open_engine(engine: str, tmp_path: Path) -> Iterator[ChunkedStore]:
    if engine == "chroma":
        from winnow.stores.chroma import ChromaStore

        yield ChromaStore.open(tmp_path / "chroma", "winnow", chunk_tokens=None)
    elif engine == "milvus":
        from winnow.stores.milvus import MilvusStore

        store = MilvusStore.open(tmp_path / "milvus.db", "winnow", chunk_tokens=None)
        yield store
        store.client.close()
    elif engine == "pgvector":
        from winnow.stores.pgvector import PgVectorStore

        dsn = os.environ.get("WINNOW_TEST_PG_DSN")
        if not dsn:
            pytest.skip(
                "WINNOW_TEST_PG_DSN is not set: start PostgreSQL + pgvector with .ci/postgres.sh start"
            )
        table = f"winnow_{uuid.uuid4().hex[:12]}"
        store = PgVectorStore.open(dsn, table, chunk_tokens=None)
        yield store
        store.connection.execute(f"DROP TABLE IF EXISTS {table}")
        store.close()
    else:
        from winnow.stores.pinecone import PineconeStore

        with PineconeServer() as server:
            store = PineconeStore(server.url, API_KEY, namespace="winnow", chunk_tokens=None)
            yield store
            assert server.errors == []
            store.close()


@pytest.fixture(params=ENGINES)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChunkedStore]:
    yield from open_engine(request.param, tmp_path)


def test_store_round_trip_feeds_the_reranker(
    store: ChunkedStore, documents: list[Document], own_ranking: list[str], minilm_cross_encoder: Path
) -> None:
    assert isinstance(store, CandidateSource)
    assert store.search("anything at all", k=3) == []  # nothing written yet: empty, not an error
    assert store.upsert(documents) == len(documents)
    assert store.upsert(documents[:3]) == 3  # replaces those documents' chunks
    everything = store.search("networking and python", k=50)
    assert sorted(h.doc_id for h in everything) == sorted(PICKED)  # no duplicates after the re-upsert

    hits = store.search("TLS 1.3 handshake round trips", k=5)
    assert [h.doc_id for h in hits] == own_ranking  # same embeddings as Winnow's own index
    top = hits[0]
    assert top.doc_id == "networking/tls-13-handshake.md" and top.rank == 1
    assert top.metadata["topic"] == "networking" and top.updated_at.startswith("2024-")
    assert top.title == "What changed in the TLS 1.3 handshake" and top.span == (0, len(top.text))
    assert hits[0].score > hits[-1].score and 0 < hits[0].score <= 1.0001
    filtered = store.search("TLS 1.3 handshake", k=5, filters={"topic": "python"})
    assert len(filtered) == 4 and all(h.metadata["topic"] == "python" for h in filtered)

    store.delete(["networking/tls-13-handshake.md"])
    assert "networking/tls-13-handshake.md" not in {h.doc_id for h in store.search("TLS 1.3", k=10)}

    response = Pipeline(store, Reranker(minilm_cross_encoder)).search("QUIC migration", candidates=5, top_k=3)
    assert len(response) == 3 and response.candidates == 5
    assert all(r.probability is not None and r.metadata["topic"] for r in response)
    assert [r.probability for r in response] == sorted((r.probability for r in response), reverse=True)
    with pytest.raises(ValueError, match="query is empty"):
        store.search(" ")
    with pytest.raises(ValueError, match="Index only"):
        store.search("tls", filters={"updated_after": "2024-01-01"})
