"""Indexing that loses seconds, one writer at a time, damaged files that say so.

A real `winnow index` process is killed with SIGKILL in the middle of a large file while a second
`winnow index` waits for it. The killed process runs the real command with a slow model (a sleep per
chunk, small embedding batches), so the kill lands mid-run on any machine; everything else runs as
shipped, on all-MiniLM-L6-v2 on the CPU.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from winnow.cli import app
from winnow.records import Document
from winnow.retrieve import Index
from winnow.retrieve.index import DamagedIndexError
from winnow.retrieve.ingest import count_documents, iter_documents
from winnow.retrieve.writing import IndexBusyError, WriteLock

SRC = Path(__file__).resolve().parents[2] / "src"
NETWORKING = SRC / "winnow" / "data" / "sample_corpus" / "networking"
SMALL_FILES = ("bgp-basics.md", "tcp-handshake.md", "tls-13-handshake.md")
SETTINGS = ("--chunk-tokens", "64", "--chunk-overlap", "8", "--commit-every-chunks", "8")
runner = CliRunner()

SLOW_WINNOW = """
import sys, time
import winnow.retrieve.dense as dense

forward, init = dense.Embedder._forward, dense.Embedder.__init__

def slow_forward(self, batch):
    time.sleep(0.2 * len(batch["input_ids"]))  # a slow machine: 0.2 s a chunk
    return forward(self, batch)

dense.Embedder._forward = slow_forward
dense.Embedder.__init__ = lambda self, *a, **k: init(self, *a, **{**k, "batch_tokens": 512})
from winnow.cli import main
sys.argv = ["winnow", *sys.argv[1:]]
main()
"""


def long_report() -> str:
    """A file of 24 chunks (a paragraph of about 40 tokens each, all different); only it says 'zanzibar'."""
    rng = random.Random(16)
    words = "latency replica quorum shard failover backlog timeout lease leader follower".split()
    paragraphs = [f"Finding {i}: " + " ".join(rng.choice(words) for _ in range(25)) + "." for i in range(24)]
    return "# Zanzibar outage report\n\n" + "\n\n".join(paragraphs) + "\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corpus")
    for name in SMALL_FILES:
        shutil.copy(NETWORKING / name, folder / name)
    (folder / "zz-outage-report.md").write_text(long_report())  # sorted last: read after the small ones
    return folder


def invoke(*args: str | Path) -> tuple[int, str]:
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


def counts(index_dir: Path) -> tuple[int, int, int]:
    """Documents, chunks and pending embeddings committed, read as another process would."""
    with closing(sqlite3.connect(index_dir / "index.sqlite")) as db:
        return tuple(  # type: ignore[return-value]
            db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("documents", "chunks", "pending_embeddings")
        )


def chunk_vectors(index_dir: Path) -> dict[str, tuple[str, int, int, np.ndarray]]:
    with closing(sqlite3.connect(index_dir / "index.sqlite")) as db:
        rows = db.execute("SELECT chunk_id, doc_id, start, end, embedding FROM chunks").fetchall()
    return {cid: (doc, s, e, np.frombuffer(blob, dtype=np.float32)) for cid, doc, s, e, blob in rows}


def summary(output: str) -> dict[str, int]:
    """The numbers of `winnow index`'s closing line (which Rich may have wrapped)."""
    found = re.search(
        r"(\d+) added, (\d+) updated, (\d+) unchanged; (\d+) chunks embedded, (\d+) reused",
        " ".join(output.split()),
    )
    assert found, output
    return dict(
        zip(("added", "updated", "unchanged", "embedded", "reused"), map(int, found.groups()), strict=True)
    )


def test_killed_winnow_index_loses_only_the_last_interval_and_a_waiting_writer_resumes(
    corpus: Path, tmp_path: Path
) -> None:
    clean_dir, killed_dir = tmp_path / "clean", tmp_path / "killed"
    code, out = invoke("index", corpus, "--index", clean_dir, *SETTINGS)
    assert code == 0, out
    clean = summary(out)
    assert (clean["added"], clean["updated"], clean["unchanged"]) == (4, 0, 0)
    assert "4/4 documents" in out and not re.search(r"\d\.\d{4,}", out)  # whole counts, with a total
    clean_docs, clean_chunks, _ = counts(clean_dir)
    assert (clean_docs, clean_chunks) == (4, clean["embedded"] + clean["reused"])

    env = {**os.environ, "PYTHONPATH": str(SRC)}
    writer = subprocess.Popen(
        [sys.executable, "-c", SLOW_WINNOW, "index", str(corpus), "--index", str(killed_dir), *SETTINGS],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    second: dict[str, object] = {}

    def index_again() -> None:
        second["code"], second["out"] = invoke("index", corpus, "--index", killed_dir, *SETTINGS)

    waiting = threading.Thread(target=index_again)
    try:
        deadline = time.monotonic() + 240
        pending = 0
        while pending < 8 and time.monotonic() < deadline and writer.poll() is None:
            time.sleep(0.1)
            if (killed_dir / "index.sqlite").exists():
                pending = counts(killed_dir)[2]
        assert writer.poll() is None, "the writer finished (or failed) before it could be stopped"
        writer.send_signal(signal.SIGSTOP)  # frozen, still holding the lock, while we look
        survived, committed_chunks, kept = counts(killed_dir)
        assert kept >= 8 and 1 <= survived < 4  # the large file is being saved in slices of 8 chunks

        with Index.open(killed_dir) as index:
            assert index.writer_active
            with pytest.raises(IndexBusyError, match=rf"another process \(pid {writer.pid}, indexing\)"):
                index.add([Document(id="x", text="x")], progress=False, wait=False)
            # Searches answer from what is committed: the large file appears only when whole.
            assert index.search("TLS handshake", k=3, mode="bm25")
            assert index.search("zanzibar outage", k=3, mode="bm25") == []
        code, out = invoke("search", "TLS handshake", "--index", killed_dir, "--no-rerank", "--mode", "bm25")
        assert code == 0 and "indexing is in progress" in out

        waiting.start()
        time.sleep(2)
        assert waiting.is_alive()  # a second `winnow index` waits for the first
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
    assert counts(killed_dir) == (survived, committed_chunks, kept)  # SIGKILL took nothing committed

    waiting.join(timeout=600)
    assert not waiting.is_alive() and second["code"] == 0, second.get("out")
    out = str(second["out"])
    assert f"waiting for another process (pid {writer.pid}, indexing)" in out  # the dead writer's lock
    rerun = summary(out)
    assert (rerun["added"], rerun["updated"], rerun["unchanged"]) == (4 - survived, 0, survived)
    assert rerun["reused"] >= kept  # the slices of the large file were not embedded again
    assert counts(killed_dir) == (clean_docs, clean_chunks, 0)

    resumed, fresh = chunk_vectors(killed_dir), chunk_vectors(clean_dir)
    assert resumed.keys() == fresh.keys()
    for chunk_id, (doc, start, end, vector) in resumed.items():
        assert (doc, start, end) == fresh[chunk_id][:3]
        assert float(vector @ fresh[chunk_id][3]) > 0.9999, chunk_id
    with Index.open(killed_dir) as index:
        assert not index.writer_active
        assert index.search("zanzibar outage", k=1, mode="bm25")[0].doc_id == "zz-outage-report.md"


def test_a_lock_held_by_a_killed_process_does_not_block(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from winnow.retrieve.writing import WriteLock; "
            "WriteLock(Path(sys.argv[1])).acquire('indexing'); print('held', flush=True); time.sleep(600)",
            str(tmp_path),
        ],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        lock = WriteLock(tmp_path)
        assert lock.held_elsewhere() and not lock.try_acquire("indexing")
        with pytest.raises(IndexBusyError, match=rf"pid {holder.pid}, indexing"):
            lock.acquire("indexing", wait=False)
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert (tmp_path / "write.lock").exists()  # the file stays; the kernel dropped the lock
        assert not lock.held_elsewhere() and lock.try_acquire("indexing")
        assert WriteLock(tmp_path).held_elsewhere()
        lock.release()
    finally:
        holder.kill()
        holder.wait()


@pytest.fixture(scope="module")
def small_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small") / "index"
    code, out = invoke("index", NETWORKING, "--index", folder, "--chunk-tokens", "0")
    assert code == 0, out
    return folder


@pytest.mark.parametrize("damage", ["truncated", "not sqlite", "empty"])
def test_damaged_sqlite_file_is_one_line_naming_the_file_and_the_rebuild(
    small_index: Path, tmp_path: Path, damage: str
) -> None:
    folder = tmp_path / "index"
    shutil.copytree(small_index, folder)
    db = folder / "index.sqlite"
    for leftover in folder.glob("index.sqlite-*"):
        leftover.unlink()  # the WAL was checkpointed when the last connection closed
    if damage == "truncated":
        os.truncate(db, db.stat().st_size // 3)
    elif damage == "not sqlite":
        db.write_text("these are my notes, not a database\n" * 200)
    else:
        db.write_bytes(b"")
    for command in (
        ["index", NETWORKING, "--index", folder],
        ["search", "TCP handshake", "--index", folder, "--no-rerank", "--mode", "bm25"],
        ["stats", "--index", folder],
    ):
        result = runner.invoke(app, [str(a) for a in command])
        assert result.exit_code == 1, (command, result.output)
        assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1, result.output
        assert f"error: {db} is damaged" in lines[0]
        assert f"rebuild it with `winnow index PATH --index {folder}`" in lines[0]


def test_damaged_sqlite_pages_found_after_opening_raise_the_same_error(
    small_index: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "index"
    shutil.copytree(small_index, folder)
    with Index.open(folder) as index:
        os.truncate(folder / "index.sqlite", 2 * 4096)  # the first pages (settings) stay readable
        with pytest.raises(DamagedIndexError, match=r"index\.sqlite is damaged"):
            index.stats()
        with pytest.raises(DamagedIndexError, match="rebuild it with `winnow index PATH"):
            index.search("TCP handshake", mode="bm25")


DAMAGE = {
    "rows.npy": lambda p: p.write_bytes(os.urandom(p.stat().st_size)),
    "vectors.npy": lambda p: os.truncate(p, p.stat().st_size // 2),
    "state.json": lambda p: p.write_text("{not json"),
    "bm25/params.index.json": lambda p: p.write_bytes(b""),
    "bm25/data.csc.index.npy": lambda p: p.write_bytes(b"\x93NUMPY garbage"),
    "hnsw.usearch": lambda p: p.write_bytes(os.urandom(100)),
}


def test_damaged_derived_files_are_rebuilt_from_sqlite(small_index: Path, tmp_path: Path) -> None:
    folder = tmp_path / "index"
    with Index.create(folder, chunk_tokens=None, hnsw_threshold=5) as index:  # with an HNSW graph
        index.add(iter_documents([NETWORKING]), progress=False)
        assert index.stats().hnsw
        expected = [h.doc_id for h in index.search("TCP three-way handshake", k=3)]
    search = ["search", "TCP three-way handshake", "--index", folder, "--no-rerank", "-k", "3", "--json"]
    for name, damage in DAMAGE.items():
        damage(folder / "derived" / name)
        result = runner.invoke(app, [str(a) for a in search])
        assert result.exit_code == 0, (name, result.output)
        assert [json.loads(line)["doc_id"] for line in result.stdout.splitlines()] == expected, name
        with Index.open(folder) as index:  # rebuilt on disk, not only in memory
            assert index._read_derived(index._generation()) is not None, name


def test_an_exception_mid_embedding_commits_what_was_embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = long_report()
    with Index.create(tmp_path / "index", chunk_tokens=64, chunk_overlap=8) as index:
        monkeypatch.setattr(index.embedder, "batch_tokens", 512)  # batches of 8 chunks
        batches = index.embedder.encode_batches

        def interrupted(texts: list[str]):
            for number, batch in enumerate(batches(texts)):
                if number == 2:
                    raise KeyboardInterrupt
                yield batch

        monkeypatch.setattr(index.embedder, "encode_batches", interrupted)
        with pytest.raises(KeyboardInterrupt):
            index.add([Document(id="report", text=text)], progress=False)
        embedded = counts(tmp_path / "index")[2]
        assert embedded > 0 and len(index) == 0  # two batches kept; the document is not whole yet
        monkeypatch.undo()
        stats = index.add([Document(id="report", text=text)], progress=False)
        assert (stats.added, stats.chunks_reused) == (1, embedded)  # its chunks all differ: no other reuse
        assert stats.chunks_embedded + stats.chunks_reused == counts(tmp_path / "index")[1]


def test_commit_settings_are_checked_and_totals_counted(tmp_path: Path, corpus: Path) -> None:
    assert count_documents([corpus]) == 4
    (tmp_path / "notes.jsonl").write_text('{"text": "a"}\n\n{"text": "b"}\n')
    assert count_documents([tmp_path / "notes.jsonl", corpus / "bgp-basics.md"]) == 3
    code, out = invoke("index", corpus, "--index", tmp_path / "i", "--commit-every-chunks", "0")
    assert code == 2 and "commit-every-chunks" in out
    with (
        Index.create(tmp_path / "j", chunk_tokens=None) as index,
        pytest.raises(ValueError, match="commit_every_seconds must be above 0"),
    ):
        index.add([], commit_every_seconds=0)


def test_add_counts_a_repeated_id_once(tmp_path: Path) -> None:
    first, second = Document(id="a", text="first text"), Document(id="a", text="second text")
    with Index.create(tmp_path / "index", chunk_tokens=None) as index:
        stats = index.add([first, second], progress=False)
        assert (stats.added, stats.updated, len(index)) == (1, 0, 1)
        assert index.get_document("a").text == "second text"
