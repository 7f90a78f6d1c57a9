"""The index's system of record: documents, chunks, embeddings and settings in one SQLite file (WAL).

Everything else in an index folder (BM25 matrices, vector arrays, HNSW graph) is derived from this file
and can be rebuilt from it, so a crash can only ever lose the work not yet committed. Embeddings of a
document that is not finished yet (a large file, or one a crash interrupted) wait in
``pending_embeddings``: the document appears only when whole, and a rerun does not embed them again.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from winnow.records import Chunk, Document

if TYPE_CHECKING:
    import numpy as np

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    source TEXT NOT NULL,
    updated_at TEXT,
    authority REAL NOT NULL,
    metadata TEXT NOT NULL,
    text TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY AUTOINCREMENT,
    chunk_id TEXT NOT NULL UNIQUE,
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    text_hash TEXT NOT NULL,
    embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_doc ON chunks(doc_id);
CREATE INDEX IF NOT EXISTS chunks_hash ON chunks(text_hash);
CREATE TABLE IF NOT EXISTS pending_embeddings (text_hash TEXT PRIMARY KEY, embedding BLOB NOT NULL);
"""


class Store:
    """Thin typed access to the SQLite file; every write method runs inside one transaction."""

    def __init__(self, path: Path):
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        # Reads of result rows hit random pages; mmap lets them come from the OS page cache.
        self.db.execute("PRAGMA mmap_size=1073741824")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one committed state, even while another process commits (WAL)."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN")
        try:
            yield
        finally:
            if self.db.in_transaction:  # SQLite may have ended it already, after an error
                self.db.execute("COMMIT")

    # settings -------------------------------------------------------------------------------------
    def get_meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    def set_meta(self, **values: Any) -> None:
        with self.db:
            self.db.executemany(
                "INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in values.items()],
            )

    # reads ----------------------------------------------------------------------------------------
    def content_hashes(self, doc_ids: Sequence[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in range(0, len(doc_ids), 500):
            part = doc_ids[i : i + 500]
            marks = ",".join("?" * len(part))
            out.update(self.db.execute(f"SELECT id, content_hash FROM documents WHERE id IN ({marks})", part))
        return out

    def embeddings_by_hash(self, hashes: Iterable[str], dim: int) -> dict[str, np.ndarray]:
        """Stored embeddings by chunk text hash: of indexed chunks, else of unfinished documents."""
        import numpy as np  # here, not at the top: opening an index for `winnow stats` needs no numpy

        out: dict[str, np.ndarray] = {}
        wanted = list(set(hashes))
        for table in ("chunks", "pending_embeddings"):
            for i in range(0, len(wanted), 500):
                part = wanted[i : i + 500]
                marks = ",".join("?" * len(part))
                for text_hash, blob in self.db.execute(
                    f"SELECT text_hash, embedding FROM {table} WHERE text_hash IN ({marks})", part
                ):
                    out[text_hash] = np.frombuffer(blob, dtype=np.float32, count=dim)
            wanted = [h for h in wanted if h not in out]
        return out

    def counts(self) -> tuple[int, int]:
        docs = self.db.execute("SELECT count(*) FROM documents").fetchone()[0]
        chunks = self.db.execute("SELECT count(*) FROM chunks").fetchone()[0]
        return int(docs), int(chunks)

    def all_chunks(self) -> Iterable[tuple[int, str, str, int, int, bytes]]:
        """(row, title, document text, start, end, embedding) for every chunk in row order."""
        return self.db.execute(
            "SELECT c.row, d.title, d.text, c.start, c.end, c.embedding "
            "FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.row"
        )

    def rows_matching(self, where: str, params: list[Any]) -> np.ndarray:
        import numpy as np

        cursor = self.db.execute(
            f"SELECT c.row FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}", params
        )
        return np.fromiter((r for (r,) in cursor), dtype=np.int64)

    def chunk_rows(self, rows: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Chunk and document fields of the given rows, keyed by row."""
        if not rows:
            return {}
        marks = ",".join("?" * len(rows))
        cursor = self.db.execute(
            "SELECT c.row, c.chunk_id, c.doc_id, c.start, c.end, d.title, d.source, d.updated_at, "
            f"d.authority, d.metadata, substr(d.text, c.start + 1, c.end - c.start) "
            f"FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE c.row IN ({marks})",
            list(rows),
        )
        out = {}
        for row, cid, doc_id, start, end, title, source, updated, authority, metadata, text in cursor:
            out[row] = {
                "chunk_id": cid,
                "doc_id": doc_id,
                "span": (start, end),
                "title": title,
                "source": source,
                "updated_at": updated,
                "authority": authority,
                "metadata": json.loads(metadata),
                "text": text,
            }
        return out

    def document(self, doc_id: str) -> Document | None:
        row = self.db.execute(
            "SELECT id, text, title, source, updated_at, authority, metadata FROM documents WHERE id = ?",
            (doc_id,),
        ).fetchone()
        if row is None:
            return None
        doc_id, text, title, source, updated, authority, metadata = row
        return Document(
            id=doc_id,
            text=text,
            title=title,
            source=source,
            updated_at=datetime.fromisoformat(updated) if updated else None,
            authority=authority,
            metadata=json.loads(metadata),
        )

    # writes ---------------------------------------------------------------------------------------
    def write_batch(
        self,
        documents: Sequence[tuple[Document, str]],
        chunks: Sequence[tuple[Chunk, str, np.ndarray]],
        generation: int,
        pending: Sequence[tuple[str, np.ndarray]] = (),
    ) -> None:
        """In one transaction: replace the given documents and their chunks (and set ``generation`` if
        there are any), and keep the ``pending`` (text hash, embedding) pairs of unfinished documents."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            for doc, content_hash in documents:
                self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc.id,))
                self.db.execute(
                    "INSERT OR REPLACE INTO documents(id, title, source, updated_at, authority, metadata,"
                    " text, content_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        doc.id,
                        doc.title,
                        doc.source,
                        doc.updated_at.isoformat() if doc.updated_at else None,
                        float(doc.authority),
                        json.dumps(doc.metadata, default=str),
                        doc.text,
                        content_hash,
                    ),
                )
            self.db.executemany(
                "INSERT INTO chunks(chunk_id, doc_id, start, end, text_hash, embedding)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (
                        c.chunk_id,
                        c.doc_id,
                        c.span[0],
                        c.span[1],
                        text_hash,
                        vector.astype("float32").tobytes(),
                    )
                    for c, text_hash, vector in chunks
                ],
            )
            self.db.executemany(
                "DELETE FROM pending_embeddings WHERE text_hash = ?", [(h,) for _, h, _ in chunks]
            )
            self.db.executemany(
                "INSERT OR REPLACE INTO pending_embeddings(text_hash, embedding) VALUES (?, ?)",
                [(h, vector.astype("float32").tobytes()) for h, vector in pending],
            )
            if documents:
                self.db.execute(
                    "INSERT OR REPLACE INTO meta(key, value) VALUES ('generation', ?)",
                    (json.dumps(generation),),
                )

    def clear_pending(self) -> None:
        """Forget embeddings kept for unfinished documents (called when an ``add`` has finished)."""
        with self.db:
            self.db.execute("DELETE FROM pending_embeddings")

    def delete(self, doc_ids: Sequence[str], generation: int) -> int:
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            deleted = 0
            for doc_id in doc_ids:
                self.db.execute("DELETE FROM chunks WHERE doc_id = ?", (doc_id,))
                deleted += self.db.execute("DELETE FROM documents WHERE id = ?", (doc_id,)).rowcount
            self.db.execute(
                "INSERT OR REPLACE INTO meta(key, value) VALUES ('generation', ?)", (json.dumps(generation),)
            )
        return deleted
