"""An on-disk stage-1 index: one folder with SQLite (the record) plus derived BM25 and vector files.

Layout of an index folder::

    index.sqlite        documents, chunks, embeddings, settings (WAL; the system of record)
    derived/            bm25/, vectors.npy, rows.npy, hnsw.usearch, state.json (rebuilt from SQLite)

``add`` commits every batch of embedded chunks before starting the next, so killing it loses at most
the batch in flight; a rerun skips documents already committed unchanged and finishes the rest. The
derived files carry the generation of the SQLite data they were built from and are rebuilt when stale,
so the index is readable at every point of an interrupted run.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from winnow.errors import WinnowError
from winnow.models import DEFAULT_EMBEDDING_MODEL, resolve_model
from winnow.retrieve.bm25 import BM25Index
from winnow.retrieve.chunking import Chunker
from winnow.retrieve.dense import Embedder, shared_embedder
from winnow.retrieve.documents import Candidate, Chunk, Document
from winnow.retrieve.filters import Filters
from winnow.retrieve.fusion import DEFAULT_RRF_K, reciprocal_rank_fusion, weighted_score_fusion
from winnow.retrieve.store import Store
from winnow.retrieve.vector_search import DEFAULT_HNSW_THRESHOLD, VectorIndex

FORMAT_VERSION = 1
DB_NAME = "index.sqlite"
Mode = Literal["bm25", "dense", "hybrid"]
MODES = ("bm25", "dense", "hybrid")


class IndexNotFoundError(WinnowError, FileNotFoundError):
    """There is no Winnow index at the given path."""


@dataclass
class AddStats:
    """What one ``Index.add`` did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0


@dataclass
class IndexStats:
    """Size and settings of an index."""

    path: Path
    documents: int
    chunks: int
    embedding_model: str
    dim: int
    chunk_tokens: int | None
    chunk_overlap: int
    hnsw: bool
    disk_bytes: int


@dataclass
class _Derived:
    generation: int
    rows: np.ndarray
    bm25: BM25Index | None  # None while the index is empty (bm25s cannot index nothing)
    vectors: VectorIndex


def _embed_text(title: str, text: str) -> str:
    """What both retrievers see for a chunk: the document title, then the chunk text."""
    return f"{title} {text}" if title else text


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class Index:
    """Stage-1 retrieval over documents you add: BM25, dense, or hybrid (RRF by default), with filters."""

    def __init__(self, path: Path, store: Store, device: str | None = None, dtype: str | None = None):
        self.path = path
        self._store = store
        self._meta = store.get_meta()
        self._device = device
        self._dtype = dtype
        self._embedder: Embedder | None = None
        self._chunker: Chunker | None = None
        self._derived: _Derived | None = None
        self._lock = threading.RLock()

    # lifecycle ------------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        chunk_tokens: int | None = 256,
        chunk_overlap: int = 32,
        hnsw_threshold: int = DEFAULT_HNSW_THRESHOLD,
        device: str | None = None,
        dtype: str | None = None,
    ) -> Index:
        """A new, empty index at ``path`` (a folder; created). Fails if an index is already there."""
        folder = Path(path).expanduser()
        if (folder / DB_NAME).exists():
            raise WinnowError(f"an index already exists at {folder}; use Index.open or Index.open_or_create")
        model_dir = resolve_model(embedding_model)
        Chunker(
            model_dir, chunk_tokens, chunk_overlap
        )  # validates the chunk settings before writing anything
        folder.mkdir(parents=True, exist_ok=True)
        store = Store(folder / DB_NAME)
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        store.set_meta(
            format_version=FORMAT_VERSION,
            embedding_model=str(embedding_model),
            dim=int(config["hidden_size"]),
            chunk_tokens=chunk_tokens,
            chunk_overlap=chunk_overlap,
            hnsw_threshold=hnsw_threshold,
            generation=0,
        )
        return cls(folder, store, device, dtype)

    @classmethod
    def open(cls, path: str | os.PathLike[str], device: str | None = None, dtype: str | None = None) -> Index:
        """The index at ``path``; raises IndexNotFoundError with the command that creates one."""
        folder = Path(path).expanduser()
        if not (folder / DB_NAME).is_file():
            raise IndexNotFoundError(
                f"no Winnow index at {folder}. Create one with `winnow index PATH --index {folder}`"
            )
        store = Store(folder / DB_NAME)
        version = store.get_meta().get("format_version")
        if version != FORMAT_VERSION:
            store.close()
            raise WinnowError(f"index at {folder} has format {version}, this Winnow reads {FORMAT_VERSION}")
        return cls(folder, store, device, dtype)

    @classmethod
    def open_or_create(cls, path: str | os.PathLike[str], **settings: Any) -> Index:
        """Open the index at ``path`` if there is one, else create it with ``settings``."""
        if (Path(path).expanduser() / DB_NAME).is_file():
            return cls.open(path, device=settings.get("device"), dtype=settings.get("dtype"))
        return cls.create(path, **settings)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # settings and lazily loaded parts ---------------------------------------------------------------
    @property
    def embedding_model(self) -> str:
        return str(self._meta["embedding_model"])

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = shared_embedder(self.embedding_model, self._device, self._dtype)
        return self._embedder

    @property
    def chunker(self) -> Chunker:
        if self._chunker is None:
            self._chunker = Chunker(
                resolve_model(self.embedding_model), self._meta["chunk_tokens"], self._meta["chunk_overlap"]
            )
        return self._chunker

    def _generation(self) -> int:
        return int(self._store.get_meta().get("generation", 0))

    # writing --------------------------------------------------------------------------------------
    def _content_hash(self, doc: Document) -> str:
        payload = json.dumps(
            [
                doc.text,
                doc.title,
                doc.source,
                doc.updated_at.isoformat() if doc.updated_at else None,
                doc.authority,
                doc.metadata,
                self._meta["chunk_tokens"],
                self._meta["chunk_overlap"],
            ],
            default=str,
            sort_keys=True,
        )
        return _hash(payload)

    def add(self, documents: Iterable[Document], progress: bool = True, batch_size: int = 256) -> AddStats:
        """Insert or replace documents by id; chunks whose text is already indexed are not re-embedded.

        Each batch of ``batch_size`` documents is committed on its own, so an interrupted call keeps
        every finished batch and a rerun picks up where it stopped.
        """
        stats = AddStats()
        start = time.perf_counter()
        with self._lock, tqdm(desc="indexing", unit="doc", disable=not progress, smoothing=0.1) as bar:
            pending: dict[str, Document] = {}
            for doc in documents:
                if not isinstance(doc, Document):
                    raise TypeError(f"Index.add takes Document objects, got {type(doc).__name__}")
                pending[doc.id] = doc
                if len(pending) >= batch_size:
                    self._add_batch(list(pending.values()), stats, bar)
                    pending = {}
            if pending:
                self._add_batch(list(pending.values()), stats, bar)
            if stats.added or stats.updated:
                self._rebuild()
        stats.seconds = time.perf_counter() - start
        return stats

    def _add_batch(self, batch: list[Document], stats: AddStats, bar: tqdm) -> None:
        done = bar.n + len(batch)
        known = self._store.content_hashes([d.id for d in batch])
        changed: list[tuple[Document, str]] = []
        for doc in batch:
            content_hash = self._content_hash(doc)
            if known.get(doc.id) == content_hash:
                stats.unchanged += 1
            else:
                changed.append((doc, content_hash))
                if doc.id in known:
                    stats.updated += 1
                else:
                    stats.added += 1
        if changed:
            chunks: list[tuple[Chunk, str, str]] = []
            for doc, _ in changed:
                for chunk in self.chunker.split(doc.id, doc.text):
                    text = _embed_text(doc.title, chunk.text)
                    chunks.append((chunk, _hash(text), text))
            dim = int(self._meta["dim"])
            vectors = self._store.embeddings_by_hash([h for _, h, _ in chunks], dim)
            missing = {h: text for _, h, text in chunks if h not in vectors}
            stats.chunks_reused += len(chunks) - sum(1 for _, h, _ in chunks if h in missing)
            stats.chunks_embedded += len(missing)
            if missing:
                # Advance the document bar while embedding, so long batches still show progress.
                per_text = len(batch) / len(missing)
                encoded = self.embedder.encode(
                    list(missing.values()), on_batch=lambda n: bar.update(n * per_text)
                )
                vectors.update(zip(missing.keys(), encoded, strict=True))
            self._store.write_batch(
                changed, [(c, h, vectors[h]) for c, h, _ in chunks], self._generation() + 1
            )
        bar.update(done - bar.n)
        bar.set_postfix(embedded=stats.chunks_embedded, reused=stats.chunks_reused)

    def delete(self, doc_ids: Sequence[str] | str) -> int:
        """Remove documents (and their chunks) by id; returns how many existed."""
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        with self._lock:
            deleted = self._store.delete(ids, self._generation() + 1)
            if deleted:
                self._rebuild()
        return deleted

    # derived search structures -----------------------------------------------------------------------
    def _rebuild(self) -> _Derived:
        """Rebuild BM25, vectors and HNSW from SQLite and swap them in atomically."""
        generation = self._generation()
        rows: list[int] = []
        texts: list[str] = []
        dim = int(self._meta["dim"])
        blobs = bytearray()
        cursor = self._store.db.execute(
            "SELECT c.row, d.title, substr(d.text, c.start + 1, c.end - c.start), c.embedding "
            "FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.row"
        )
        for row, title, text, blob in cursor:
            rows.append(row)
            texts.append(_embed_text(title, text))
            blobs += blob
        vectors = np.frombuffer(bytes(blobs), dtype=np.float32).reshape(len(rows), dim)
        tmp = self.path / f"derived.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        row_array = np.asarray(rows, dtype=np.int64)
        np.save(tmp / "rows.npy", row_array)
        bm25 = BM25Index.build(texts) if texts else None
        if bm25 is not None:
            bm25.save(tmp / "bm25")
        vector_index = VectorIndex.build(vectors, int(self._meta["hnsw_threshold"]))
        vector_index.save(tmp)
        (tmp / "state.json").write_text(json.dumps({"generation": generation, "chunks": len(rows)}))
        final, old = self.path / "derived", self.path / "derived.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        self._derived = _Derived(generation, row_array, bm25, vector_index)
        return self._derived

    def _load_derived(self) -> _Derived:
        generation = self._generation()
        if self._derived is not None and self._derived.generation == generation:
            return self._derived
        folder = self.path / "derived"
        try:
            state = json.loads((folder / "state.json").read_text())
        except (OSError, ValueError):
            state = {}
        if state.get("generation") != generation:
            return self._rebuild()
        self._derived = _Derived(
            generation,
            np.load(folder / "rows.npy"),
            BM25Index.load(folder / "bm25") if state.get("chunks") else None,
            VectorIndex.load(folder),
        )
        return self._derived

    # searching ------------------------------------------------------------------------------------
    def _allowed(self, filters: Filters | None, derived: _Derived) -> np.ndarray | None:
        if filters is None:
            return None
        where, params = filters.to_sql()
        rows = self._store.rows_matching(where, params)
        mask = np.zeros(len(derived.rows), dtype=bool)
        positions = np.searchsorted(derived.rows, rows)
        inside = positions < len(derived.rows)
        positions, rows = positions[inside], rows[inside]
        mask[positions[derived.rows[positions] == rows]] = True
        return mask

    def search(
        self,
        query: str,
        k: int = 100,
        mode: Mode = "hybrid",
        filters: Filters | Mapping[str, Any] | None = None,
        fusion: Literal["rrf", "weighted"] = "weighted",
        rrf_k: int = DEFAULT_RRF_K,
        dense_weight: float = 0.5,
        depth: int = 100,
    ) -> list[Candidate]:
        """Top-k chunks for ``query``, best first.

        ``mode`` picks BM25, dense or hybrid; hybrid fuses the top ``depth`` (at least k) of each list
        with min-max normalised weighted scores (``dense_weight`` for dense; the default, best on SciFact:
        see docs/benchmarks.md) or reciprocal rank fusion (``fusion="rrf"``, ``rrf_k``).
        ``filters`` (``Filters`` or a dict: source glob, updated_after/before, metadata key = value)
        restrict which chunks are scored at all.
        """
        if not isinstance(query, str) or not query.strip():
            raise ValueError("query is empty: give some words to search for")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        parsed = Filters.parse(filters)
        with self._lock:
            derived = self._load_derived()
            if derived.bm25 is None:
                return []
            allowed = self._allowed(parsed, derived)
            width = k if mode != "hybrid" else max(k, depth)
            if mode in ("bm25", "hybrid"):
                bm25_hits = derived.bm25.search(query, width, allowed)
            if mode in ("dense", "hybrid"):
                dense_hits = derived.vectors.search(self.embedder.encode_query(query), width, allowed)
            if mode == "bm25":
                positions, scores = bm25_hits
            elif mode == "dense":
                positions, scores = dense_hits
            elif fusion == "rrf":
                positions, scores = reciprocal_rank_fusion([bm25_hits[0], dense_hits[0]], k=rrf_k)
            elif fusion == "weighted":
                if not 0.0 <= dense_weight <= 1.0:
                    raise ValueError(f"dense_weight must be between 0 and 1, got {dense_weight}")
                positions, scores = weighted_score_fusion(
                    [bm25_hits, dense_hits], [1 - dense_weight, dense_weight]
                )
            else:
                raise ValueError(f"fusion must be 'rrf' or 'weighted', not {fusion!r}")
            positions, scores = positions[:k], scores[:k]
            rows = derived.rows[positions].tolist()
            fields = self._store.chunk_rows(rows)
        out = []
        for rank, (row, score) in enumerate(zip(rows, scores.tolist(), strict=True), start=1):
            f = fields[row]
            metadata = {**f["metadata"], "updated_at": f["updated_at"], "authority": f["authority"]}
            out.append(
                Candidate(
                    chunk_id=f["chunk_id"],
                    doc_id=f["doc_id"],
                    text=f["text"],
                    title=f["title"],
                    score=float(score),
                    rank=rank,
                    span=f["span"],
                    metadata=metadata,
                    source=f["source"],
                )
            )
        return out

    # inspection -----------------------------------------------------------------------------------
    def get_document(self, doc_id: str) -> Document | None:
        with self._lock:
            return self._store.document(doc_id)

    def __len__(self) -> int:
        return self._store.counts()[0]

    def stats(self) -> IndexStats:
        docs, chunks = self._store.counts()
        disk = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        return IndexStats(
            path=self.path,
            documents=docs,
            chunks=chunks,
            embedding_model=self.embedding_model,
            dim=int(self._meta["dim"]),
            chunk_tokens=self._meta["chunk_tokens"],
            chunk_overlap=int(self._meta["chunk_overlap"]),
            hnsw=(self.path / "derived" / "hnsw.usearch").is_file(),
            disk_bytes=disk,
        )
