"""`winnow index --ray` on a local Ray: the same index as a plain `winnow index` (chunks, vectors within
1e-5, search results), an embedding actor killed on its first batch loses and duplicates nothing, a
rerun embeds only what is not committed, and (slow) a run killed part way resumes with what it committed."""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from scale.conftest import ABSTRACTS
from scale.faults import arm, fired
from winnow.retrieve import Index
from winnow.retrieve.ingest import IngestReport, expand_paths, iter_documents

pytest.importorskip("ray")

WINNOW = [sys.executable, "-m", "winnow"]


def _chunks(folder: Path) -> tuple[list[tuple[str, str, int, int]], np.ndarray]:
    """The chunk rows of an index's system of record, in row order, and their vectors."""
    with sqlite3.connect(f"file:{folder / 'index.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT chunk_id, doc_id, start, end, embedding FROM chunks ORDER BY row"
        ).fetchall()
    vectors = np.stack([np.frombuffer(row[4], dtype=np.float32) for row in rows])
    return [row[:4] for row in rows], vectors


def _documents(folder: Path) -> set[str]:
    """Ids of the documents committed so far."""
    try:
        with sqlite3.connect(f"file:{folder / 'index.sqlite'}?mode=ro", uri=True, timeout=1) as db:
            return {row[0] for row in db.execute("SELECT id FROM documents")}
    except sqlite3.Error:  # not created yet, or created but without its tables so far
        return set()


@pytest.fixture(scope="module")
def plain_index(scifact_corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the same corpus through Index.add in this process."""
    folder = tmp_path_factory.mktemp("plain") / "index"
    with Index.create(folder, dtype="fp32") as index:
        index.add(iter_documents([scifact_corpus]), progress=False)
    return folder


@pytest.fixture(scope="module")
def ray_run(
    ray_address: str, scifact_corpus: Path, kill_flag: Path, tmp_path_factory: pytest.TempPathFactory
):
    """The corpus indexed on Ray by 2 actors, one of which is killed (SIGKILL) on its first batch."""
    from winnow.scale.indexing import embed_into

    folder = tmp_path_factory.mktemp("on-ray") / "index"
    files = list(expand_paths([scifact_corpus], IngestReport()))
    arm(kill_flag)
    with Index.create(folder, dtype="fp32") as index:
        stats, report = embed_into(index, files, actors=2, dtype="fp32", progress=False)
    return folder, stats, report


def test_an_index_built_on_ray_equals_the_plain_one(plain_index, ray_run, scifact_queries) -> None:
    folder, stats, report = ray_run
    plain_rows, plain_vectors = _chunks(plain_index)
    ray_rows, ray_vectors = _chunks(folder)
    assert ray_rows == plain_rows  # same chunks, same spans, in the same row order
    np.testing.assert_allclose(ray_vectors, plain_vectors, atol=1e-5)
    assert report.documents == ABSTRACTS and stats.added == ABSTRACTS
    with Index.open(plain_index) as plain, Index.open(folder) as on_ray:
        for query in scifact_queries:
            for mode in ("bm25", "dense", "hybrid"):
                expected = [c.chunk_id for c in plain.search(query, k=10, mode=mode)]
                assert [c.chunk_id for c in on_ray.search(query, k=10, mode=mode)] == expected


def test_an_actor_killed_mid_run_loses_and_duplicates_nothing(plain_index, ray_run, kill_flag) -> None:
    folder, stats, _ = ray_run
    assert fired(kill_flag), "no embedding actor took the kill flag: the fault was not injected"
    plain_rows, _ = _chunks(plain_index)
    rows, _ = _chunks(folder)
    assert len({row[0] for row in rows}) == len(rows) == len(plain_rows)
    # The writer received each chunk's vector once: the killed actor's batch was redone, not doubled.
    assert stats.chunks_embedded == len(plain_rows) and stats.chunks_reused == 0


def test_a_rerun_embeds_only_what_is_not_committed(
    ray_address, ray_run, scifact_corpus, plain_index, tmp_path
):
    """`winnow index --ray` on a copy of the Ray-built index with 10 documents deleted: the other 20 are
    skipped before any actor sees them, only the 10 are embedded again, and the index is whole."""
    target = tmp_path / "index"
    shutil.copytree(ray_run[0], target)
    with Index.open(target) as index:
        gone = sorted(_documents(target))[:10]
        assert index.delete(gone) == 10
    command = [*WINNOW, "index", str(scifact_corpus), "--index", str(target), "--ray"]
    command += ["--ray-address", ray_address, "--ray-actors", "1"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    rows, _ = _chunks(target)
    plain_rows, _ = _chunks(plain_index)
    assert sorted(rows) == sorted(plain_rows)
    embedded = sum(1 for row in rows if row[1] in gone)
    summary = " ".join(result.stdout.split())
    assert f"10 added, 0 updated, 20 unchanged; {embedded} chunks embedded, 0 reused" in summary


@pytest.mark.slow  # a minute: a real `winnow index --ray` process killed, then a second run
def test_a_killed_run_resumes_with_what_it_committed(
    ray_address, scifact_corpus, plain_index, tmp_path
) -> None:
    """`winnow index --ray` (one actor, a commit every 4 chunks) killed after its first commit; the
    rerun skips the committed documents and embeds only the rest."""
    from winnow.scale.indexing import build_index_on_ray

    target = tmp_path / "index"
    command = [*WINNOW, "index", str(scifact_corpus), "--index", str(target), "--ray"]
    command += ["--ray-address", ray_address, "--ray-actors", "1", "--commit-every-chunks", "4"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while not _documents(target):
        assert process.poll() is None, f"winnow index --ray ended early: {process.stderr.read()}"
        assert time.monotonic() < deadline, "winnow index --ray committed nothing in time"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    process.stderr.close()
    committed = _documents(target)
    assert len(committed) < ABSTRACTS, "the kill came too late to test a resume: everything was committed"

    stats, _ = build_index_on_ray([scifact_corpus], target, {}, address=ray_address, actors=1, progress=False)
    assert (stats.unchanged, stats.added, stats.updated) == (len(committed), ABSTRACTS - len(committed), 0)
    rows, _ = _chunks(target)
    plain_rows, _ = _chunks(plain_index)
    assert rows == plain_rows  # the committed documents first, then the rest: the plain order
    assert stats.chunks_embedded == sum(1 for row in rows if row[1] not in committed)
