"""QdrantStore against a real Qdrant engine (qdrant-client's embedded on-disk mode), feeding the reranker."""

from __future__ import annotations

from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from winnow.pipeline import Pipeline
from winnow.retrieve import Index
from winnow.retrieve.ingest import iter_documents
from winnow.stores import CandidateSource
from winnow.stores.qdrant import QdrantStore

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "winnow" / "data" / "sample_corpus"


def test_qdrant_round_trip_on_disk(tmp_path: Path) -> None:
    docs = list(iter_documents([SAMPLE]))
    client = QdrantClient(path=str(tmp_path / "qdrant"))
    store = QdrantStore(client, "winnow", chunk_tokens=None)
    assert isinstance(store, CandidateSource)
    assert store.upsert(docs) == 50
    assert store.upsert(docs[:5]) == 5  # replaces, does not duplicate
    assert client.count("winnow").count == 50

    hits = store.search("TLS 1.3 handshake round trips", k=5)
    assert hits[0].doc_id == "networking/tls-13-handshake.md"
    assert hits[0].metadata["topic"] == "networking" and hits[0].span == (0, len(hits[0].text))
    filtered = store.search("TLS 1.3 handshake", k=5, filters={"topic": "python"})
    assert len(filtered) == 5 and all(h.metadata["topic"] == "python" for h in filtered)

    # Same embeddings as Winnow's own index: the dense rankings agree.
    with Index.create(tmp_path / "index", chunk_tokens=None) as index:
        index.add(docs, progress=False)
        own = [h.doc_id for h in index.search("TLS 1.3 handshake round trips", k=5, mode="dense")]
    assert [h.doc_id for h in hits] == own

    store.delete(["networking/tls-13-handshake.md"])
    assert "networking/tls-13-handshake.md" not in {h.doc_id for h in store.search("TLS 1.3", k=10)}
    client.close()

    reopened = QdrantStore(QdrantClient(path=str(tmp_path / "qdrant")), "winnow", chunk_tokens=None)
    assert reopened.client.count("winnow").count == 49
    response = Pipeline(reopened, None).search("QUIC connection migration", candidates=5, top_k=2)
    assert response[0].doc_id == "networking/quic-http3.md" and response[0].stage1_rank == 1
    with pytest.raises(ValueError, match="query is empty"):
        reopened.search("")
    reopened.client.close()
