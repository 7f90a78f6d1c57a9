"""The on-disk index: search modes, upserts that re-embed only changes, deletes, filters, interrupted adds.

Killed processes, the writer lock and damaged files: test_index_robustness.py.
"""

from __future__ import annotations

import dataclasses
import itertools
import shutil
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from winnow.records import Document
from winnow.retrieve import Index, IndexNotFoundError
from winnow.retrieve.fusion import reciprocal_rank_fusion, weighted_score_fusion
from winnow.retrieve.ingest import iter_documents

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "winnow" / "data" / "sample_corpus"


@pytest.fixture(scope="module")
def sample_docs() -> list[Document]:
    return list(iter_documents([SAMPLE]))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, sample_docs: list[Document]) -> Path:
    path = tmp_path_factory.mktemp("built") / "index"
    with Index.create(path, chunk_tokens=64, chunk_overlap=16) as index:
        index.add(sample_docs, progress=False)
    return path


@pytest.fixture
def index(built: Path, tmp_path: Path):
    """A private copy of the sample index, so tests may change it."""
    shutil.copytree(built, tmp_path / "index")
    with Index.open(tmp_path / "index") as opened:
        yield opened


def test_search_modes_find_the_obvious_document(index: Index) -> None:
    for mode in ("bm25", "dense", "hybrid"):
        hits = index.search("SQLite write-ahead log checkpoint", k=5, mode=mode)
        assert hits[0].doc_id == "databases/sqlite-wal-mode.md", mode
        assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
        assert all(a.score >= b.score for a, b in itertools.pairwise(hits))
    hit = index.search("BGP route hijacking RPKI", k=1, mode="hybrid")[0]
    document = index.get_document(hit.doc_id)
    assert document is not None and document.text[hit.span[0] : hit.span[1]] == hit.text
    assert hit.title == "BGP: how networks exchange routes" and hit.source.endswith("bgp-basics.md")
    assert hit.metadata == {"topic": "networking"}  # the document's own fields; dates and weights are fields
    assert hit.updated_at.startswith("2023-06-19") and hit.authority == 0.5


def test_dense_finds_paraphrases_bm25_cannot(index: Index) -> None:
    query = "one thread at a time interpreter lock"
    dense = [h.doc_id for h in index.search(query, k=3, mode="dense")]
    assert "python/python-gil.md" in dense


def test_reindex_embeds_only_changed_chunks(index: Index, sample_docs: list[Document]) -> None:
    again = index.add(sample_docs, progress=False)
    assert (again.added, again.updated, again.unchanged, again.chunks_embedded) == (0, 0, 50, 0)
    target = next(d for d in sample_docs if d.id == "databases/postgres-vacuum.md")
    edited = dataclasses.replace(target, text=target.text + "\n\nA brand new closing paragraph about bloat.")
    stats = index.add([edited], progress=False)
    assert (stats.updated, stats.chunks_embedded) == (1, 1)
    assert stats.chunks_reused >= 2  # only the last chunk, which took the new paragraph, changed
    assert index.search("brand new closing paragraph", k=1, mode="bm25")[0].doc_id == target.id


def test_delete_removes_documents_from_every_retriever(index: Index) -> None:
    assert index.delete(["databases/sqlite-wal-mode.md", "no-such-doc"]) == 1
    for mode in ("bm25", "dense"):
        hits = index.search("SQLite write-ahead logging WAL", k=20, mode=mode)
        assert "databases/sqlite-wal-mode.md" not in {h.doc_id for h in hits}
    assert len(index) == 49 and index.delete("no-such-doc") == 0


def test_filters_apply_during_retrieval(index: Index) -> None:
    # A database query filtered to networking must still fill k from networking documents.
    for mode in ("bm25", "dense", "hybrid"):
        hits = index.search(
            "database connection pool timeouts", k=5, mode=mode, filters={"topic": "networking"}
        )
        assert len(hits) == 5 or mode == "bm25", mode
        assert hits and all(h.metadata["topic"] == "networking" for h in hits)
    hits = index.search("search ranking", k=50, filters={"source": "*/search/*.txt"})
    assert (
        hits
        and {Path(h.source).suffix for h in hits} == {".txt"}
        and all("/search/" in h.source for h in hits)
    )
    recent = index.search("database", k=50, filters={"updated_after": "2024-09-01"})
    assert recent and all(h.updated_at >= "2024-09-01" for h in recent)
    window = index.search(
        "database",
        k=50,
        filters={"updated_after": datetime(2023, 1, 1, tzinfo=UTC), "updated_before": "2023-06-30"},
    )
    assert window and all("2023-01-01" <= h.updated_at <= "2023-06-30T23" for h in window)
    assert index.search("database", k=5, filters={"topic": "cooking"}) == []


def test_hnsw_above_threshold_agrees_with_exact_search(tmp_path: Path, sample_docs: list[Document]) -> None:
    with Index.create(tmp_path / "exact", chunk_tokens=None) as exact:
        exact.add(sample_docs, progress=False)
        with Index.create(tmp_path / "hnsw", chunk_tokens=None, hnsw_threshold=10) as hnsw:
            hnsw.add(sample_docs, progress=False)
            assert hnsw.stats().hnsw and not exact.stats().hnsw
            for query in ("TLS handshake round trips", "pytest fixtures", "vacuum dead tuples"):
                a = [h.doc_id for h in exact.search(query, k=3, mode="dense")]
                b = [h.doc_id for h in hnsw.search(query, k=3, mode="dense")]
                assert a == b
            filtered = hnsw.search("TLS handshake", k=5, mode="dense", filters={"topic": "python"})
            assert len(filtered) == 5 and all(h.metadata["topic"] == "python" for h in filtered)


def test_interrupted_add_keeps_committed_batches_and_resumes(
    tmp_path: Path, sample_docs: list[Document]
) -> None:
    def crashing():
        for number, doc in enumerate(sample_docs):
            if number == 25:
                raise RuntimeError("power cut")
            yield doc

    with (
        Index.create(tmp_path / "i", chunk_tokens=None) as index,
        pytest.raises(RuntimeError, match="power cut"),
    ):
        index.add(crashing(), progress=False, commit_every_chunks=10)
    with Index.open(tmp_path / "i") as index:
        assert len(index) == 20  # two commits of 10; the 5 documents read since were not embedded yet
        assert index.search("SQLite write-ahead logging", k=3)  # readable: derived files rebuilt
        stats = index.add(sample_docs, progress=False, commit_every_chunks=10)
        assert (stats.unchanged, stats.added, stats.chunks_embedded) == (20, 30, 30)
        assert len(index) == 50


def test_open_missing_index_and_bad_queries(tmp_path: Path, index: Index) -> None:
    with pytest.raises(IndexNotFoundError, match=r"winnow index PATH --index .*nothing-here"):
        Index.open(tmp_path / "nothing-here")
    with pytest.raises(ValueError, match="query is empty"):
        index.search("   ")
    with pytest.raises(ValueError, match="mode must be"):
        index.search("x", mode="sparse")  # type: ignore[arg-type]


def test_reciprocal_rank_fusion_and_weighted_fusion() -> None:
    ids, scores = reciprocal_rank_fusion([np.array([1, 2, 3]), np.array([3, 1, 4])], k=60)
    assert ids.tolist() == [1, 3, 2, 4]
    assert scores[0] == pytest.approx(1 / 61 + 1 / 62)
    # Equal scores go to the list given first, whatever the ids (by id this would be 3, 5, 4, 6).
    ids, _ = reciprocal_rank_fusion([np.array([5, 6]), np.array([3, 4])], k=60)
    assert ids.tolist() == [5, 3, 6, 4]
    ids, scores = weighted_score_fusion(
        [(np.array([1, 2]), np.array([10.0, 0.0])), (np.array([2, 3]), np.array([0.9, 0.1]))], [0.3, 0.7]
    )
    assert ids.tolist() == [2, 1, 3] and scores.tolist() == pytest.approx([0.7, 0.3, 0.0])


def test_empty_index_searches_return_nothing(tmp_path: Path) -> None:
    with Index.create(tmp_path / "empty", chunk_tokens=None) as index:
        assert index.search("anything") == []
        index.add([Document(id="a", text="hello world")], progress=False)
        assert [h.doc_id for h in index.search("hello", mode="bm25")] == ["a"]
        index.delete(["a"])
        assert index.search("hello") == [] and index.search("hello", filters={"source": "*"}) == []
    with Index.open(tmp_path / "empty") as reopened:
        assert reopened.search("hello", mode="dense") == []
