"""An on-disk stage-1 index: one folder with SQLite (the record) plus derived BM25 and vector files.

Layout of an index folder::

    index.sqlite        documents, chunks, embeddings, settings (WAL; the system of record)
    derived/            bm25/, vectors.npy, rows.npy, hnsw.usearch, state.json (rebuilt from SQLite)
    write.lock          the writer lock: one writer at a time (winnow.retrieve.writing)

``add`` commits every ``commit_every_seconds`` of work or ``commit_every_chunks`` chunks, whichever
comes first, inside a large document too (its embeddings wait in SQLite until it is whole), so killing
it loses at most one interval; a rerun skips documents committed unchanged, reuses the embeddings kept
for unfinished ones and finishes the rest. The derived files carry the generation of the SQLite data
they were built from and are rebuilt when stale or unreadable, so the index is readable at every point
of an interrupted run.

numpy, tqdm and the search structures are imported by the methods that use them: opening an index for
`winnow stats` then takes a few milliseconds instead of a quarter of a second.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import shutil
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from winnow.errors import WinnowError
from winnow.models import DEFAULT_EMBEDDING_MODEL, resolve_model
from winnow.records import Candidate, Chunk, Document, title_and_text
from winnow.retrieve.chunking import Chunker
from winnow.retrieve.filters import Filters
from winnow.retrieve.fusion import DEFAULT_RRF_K
from winnow.retrieve.sqlite_store import Store
from winnow.retrieve.writing import COMMIT_EVERY_CHUNKS, COMMIT_EVERY_SECONDS, WriteLock

if TYPE_CHECKING:
    import numpy as np

    from winnow.retrieve.bm25 import BM25Index
    from winnow.retrieve.dense import Embedder
    from winnow.retrieve.vector_search import VectorIndex

FORMAT_VERSION = 1
DB_NAME = "index.sqlite"
Mode = Literal["bm25", "dense", "hybrid"]
MODES = ("bm25", "dense", "hybrid")
DEFAULT_HNSW_THRESHOLD = 20_000  # chunks; from here on dense search proposes candidates with HNSW
_DAMAGE_CODES = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
_Method = TypeVar("_Method", bound=Callable[..., Any])


class IndexNotFoundError(WinnowError, FileNotFoundError):
    """There is no Winnow index at the given path."""


class IndexExistsError(WinnowError, FileExistsError):
    """``Index.create`` was given a folder that already holds an index."""


class DamagedIndexError(WinnowError):
    """The index's SQLite file cannot be read (truncated, overwritten, or not SQLite at all)."""

    def __init__(self, folder: Path, reason: str):
        super().__init__(
            f"{folder / DB_NAME} is damaged ({reason}): delete {folder} and rebuild it with "
            f"`winnow index PATH --index {folder}`"
        )


@contextmanager
def _naming_damage(folder: Path) -> Iterator[None]:
    """SQLite's 'malformed' and 'not a database' become one DamagedIndexError line that names the fix."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        if exc.sqlite_errorcode not in _DAMAGE_CODES:
            raise
        raise DamagedIndexError(folder, str(exc)) from exc


def _names_damage(method: _Method) -> _Method:
    """Any SQLite read can be the first to meet a damaged page, so every public method reports it alike."""

    @functools.wraps(method)
    def wrapper(self: Index, *args: Any, **kwargs: Any) -> Any:
        with _naming_damage(self.path):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


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


def _hash(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def content_hash(doc: Document, chunk_tokens: int | None, chunk_overlap: int) -> str:
    """What decides whether a document is indexed again: its fields and the index's chunk settings."""
    payload = json.dumps(
        [
            doc.text,
            doc.title,
            doc.source,
            doc.updated_at.isoformat() if doc.updated_at else None,
            doc.authority,
            doc.metadata,
            chunk_tokens,
            chunk_overlap,
        ],
        default=str,
        sort_keys=True,
    )
    return _hash(payload)


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
        exists = IndexExistsError(
            f"an index already exists at {folder}; use Index.open or Index.open_or_create"
        )
        if (folder / DB_NAME).exists():
            raise exists
        model_dir = resolve_model(embedding_model)
        Chunker(
            model_dir, chunk_tokens, chunk_overlap
        )  # validates the chunk settings before writing anything
        folder.mkdir(parents=True, exist_ok=True)
        lock = WriteLock(folder)
        lock.acquire("creating the index")  # two processes creating one index: one creates, one fails
        try:
            if (folder / DB_NAME).exists():
                raise exists
            # Written under another name and renamed, so no reader ever sees a file without settings.
            draft = folder / f"{DB_NAME}.new-{os.getpid()}"
            store = Store(draft)
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
            store.close()  # the last connection: SQLite folds the WAL back into the file
            draft.rename(folder / DB_NAME)
        finally:
            lock.release()
        return cls(folder, Store(folder / DB_NAME), device, dtype)

    @classmethod
    def open(cls, path: str | os.PathLike[str], device: str | None = None, dtype: str | None = None) -> Index:
        """The index at ``path``; raises IndexNotFoundError with the command that creates one."""
        folder = Path(path).expanduser()
        if not (folder / DB_NAME).is_file():
            raise IndexNotFoundError(
                f"no Winnow index at {folder}. Create one with `winnow index PATH --index {folder}`"
            )
        with _naming_damage(folder):
            store = Store(folder / DB_NAME)
            try:
                version = store.get_meta().get("format_version")
            except sqlite3.DatabaseError:
                store.close()
                raise
        if version != FORMAT_VERSION:
            store.close()
            if version is None:  # an empty file, or a create that was killed before its first commit
                raise DamagedIndexError(folder, "it holds no Winnow settings")
            raise WinnowError(f"index at {folder} has format {version}, this Winnow reads {FORMAT_VERSION}")
        return cls(folder, store, device, dtype)

    @classmethod
    def open_or_create(cls, path: str | os.PathLike[str], **settings: Any) -> Index:
        """Open the index at ``path`` if there is one, else create it with ``settings``."""
        if not (Path(path).expanduser() / DB_NAME).is_file():
            try:
                return cls.create(path, **settings)
            except IndexExistsError:
                pass  # another process created it meanwhile
        return cls.open(path, device=settings.get("device"), dtype=settings.get("dtype"))

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
            from winnow.retrieve.dense import shared_embedder  # imports torch: not for `winnow stats`

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
        return content_hash(doc, self._meta["chunk_tokens"], self._meta["chunk_overlap"])

    def committed_documents(self) -> Iterator[tuple[str, str]]:
        """(id, content hash) of every committed document: what a writer elsewhere may skip."""
        with self._lock, _naming_damage(self.path):
            yield from self._store.db.execute("SELECT id, content_hash FROM documents")

    @_names_damage
    def add(
        self,
        documents: Iterable[Document],
        progress: bool = True,
        total: int | None = None,
        commit_every_seconds: float = COMMIT_EVERY_SECONDS,
        commit_every_chunks: int = COMMIT_EVERY_CHUNKS,
        wait: bool = True,
    ) -> AddStats:
        """Insert or replace documents by id; chunks whose text is already indexed are not re-embedded.

        Work is committed every ``commit_every_seconds`` or ``commit_every_chunks`` chunks, whichever
        comes first, also in the middle of a large document, so a killed call loses at most the last
        interval and a rerun picks up where it stopped (an exception loses nothing: what is embedded is
        committed first). ``total``, the number of documents expected, gives the progress bar its total
        and ETA. One writer at a time: a second waits for the first, or with ``wait=False`` raises
        IndexBusyError.
        """
        items = ((doc, None) for doc in documents)
        return self.add_embedded(items, progress, total, commit_every_seconds, commit_every_chunks, wait)

    @_names_damage
    def add_embedded(
        self,
        documents: Iterable[tuple[Document, Sequence[tuple[Chunk, np.ndarray]] | None]],
        progress: bool = True,
        total: int | None = None,
        commit_every_seconds: float = COMMIT_EVERY_SECONDS,
        commit_every_chunks: int = COMMIT_EVERY_CHUNKS,
        wait: bool = True,
    ) -> AddStats:
        """``add`` for documents chunked and embedded elsewhere (``winnow index --ray``'s actors).

        Each item is a document with its chunks (from this index's chunker) and their vectors, written
        as given, or with None: then it is chunked and embedded here, as ``add`` does. Either way a
        document committed unchanged is skipped.
        """
        if not commit_every_seconds > 0 or commit_every_chunks < 1:
            raise ValueError(
                "commit_every_seconds must be above 0 and commit_every_chunks at least 1, got "
                f"{commit_every_seconds} and {commit_every_chunks}"
            )
        start = time.perf_counter()
        with self._lock, _Progress(progress, total) as bar, self._writing("indexing", wait, bar.note):
            run = _AddRun(self, bar, commit_every_seconds, commit_every_chunks)
            try:
                for doc, embedded in documents:
                    if not isinstance(doc, Document):
                        raise TypeError(f"Index.add takes Document objects, got {type(doc).__name__}")
                    run.take(doc, embedded)
                    if run.due():
                        run.embed_and_commit()
                run.embed_and_commit()
            except BaseException:
                run.commit()  # what is embedded already; nothing new is embedded on the way out
                raise
            self._store.clear_pending()
            if run.stats.added or run.stats.updated:
                self._rebuild()
        run.stats.seconds = time.perf_counter() - start
        return run.stats

    @contextmanager
    def _writing(
        self, purpose: str, wait: bool = True, on_wait: Callable[[str], object] | None = None
    ) -> Iterator[None]:
        lock = WriteLock(self.path)
        lock.acquire(purpose, wait, on_wait)
        try:
            yield
        finally:
            lock.release()

    @property
    def writer_active(self) -> bool:
        """Whether another process (or another Index object) is writing to this index right now.

        Searches meanwhile answer from what it has committed so far.
        """
        return WriteLock(self.path).held_elsewhere()

    @_names_damage
    def delete(self, doc_ids: Sequence[str] | str, wait: bool = True) -> int:
        """Remove documents (and their chunks) by id; returns how many existed.

        Waits for another writer to finish first, or with ``wait=False`` raises IndexBusyError.
        """
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        with self._lock, self._writing("deleting", wait):
            deleted = self._store.delete(ids, self._generation() + 1)
            if deleted:
                self._rebuild()
        return deleted

    # derived search structures -----------------------------------------------------------------------
    def _rebuild(self, save: bool = True) -> _Derived:
        """Rebuild BM25, vectors and HNSW from SQLite; with ``save`` swap them into derived/ atomically.

        Only the holder of the writer lock may save (two processes renaming derived/ at once would race).
        """
        import numpy as np

        from winnow.retrieve.bm25 import BM25Index
        from winnow.retrieve.vector_search import VectorIndex

        rows: list[int] = []
        texts: list[str] = []
        dim = int(self._meta["dim"])
        blobs = bytearray()
        with self._store.snapshot():  # the generation and the chunks of one committed state
            generation = self._generation()
            cursor = self._store.db.execute(
                "SELECT c.row, d.title, substr(d.text, c.start + 1, c.end - c.start), c.embedding "
                "FROM chunks c JOIN documents d ON d.id = c.doc_id ORDER BY c.row"
            )
            for row, title, text, blob in cursor:
                rows.append(row)
                texts.append(title_and_text(title, text))
                blobs += blob
        vectors = np.frombuffer(bytes(blobs), dtype=np.float32).reshape(len(rows), dim)
        row_array = np.asarray(rows, dtype=np.int64)
        bm25 = BM25Index.build(texts) if texts else None
        vector_index = VectorIndex.build(vectors, int(self._meta["hnsw_threshold"]))
        self._derived = _Derived(generation, row_array, bm25, vector_index)
        if not save:
            return self._derived
        tmp = self.path / f"derived.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        np.save(tmp / "rows.npy", row_array)
        if bm25 is not None:
            bm25.save(tmp / "bm25")
        vector_index.save(tmp)
        (tmp / "state.json").write_text(json.dumps({"generation": generation, "chunks": len(rows)}))
        final, old = self.path / "derived", self.path / "derived.old"
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
        return self._derived

    def _load_derived(self) -> _Derived:
        generation = self._generation()
        if self._derived is not None and self._derived.generation == generation:
            return self._derived
        derived = self._read_derived(generation)
        if derived is not None:
            self._derived = derived
            return derived
        # Stale or damaged: rebuild from SQLite, and save the result unless someone is writing.
        lock = WriteLock(self.path)
        if not lock.try_acquire("rebuilding the search files"):
            return self._rebuild(save=False)
        try:
            return self._rebuild()
        finally:
            lock.release()

    def _read_derived(self, generation: int) -> _Derived | None:
        """The saved search files if they are of ``generation`` and readable, else None."""
        import numpy as np

        from winnow.retrieve.bm25 import BM25Index
        from winnow.retrieve.vector_search import VectorIndex

        folder = self.path / "derived"
        try:
            state = json.loads((folder / "state.json").read_text())
            if state.get("generation") != generation:
                return None
            chunks = int(state["chunks"])
            rows = np.load(folder / "rows.npy")
            bm25 = BM25Index.load(folder / "bm25") if chunks else None
            vectors = VectorIndex.load(folder)
        except Exception:  # any unreadable derived file (truncated, garbage, missing) is rebuilt from SQLite
            return None
        sizes = {len(rows), len(vectors), len(vectors.hnsw) if vectors.hnsw is not None else chunks}
        if bm25 is not None:
            sizes.add(int(bm25.retriever.scores["num_docs"]))
        if sizes != {chunks} or rows.dtype != np.int64 or vectors.vectors.shape[1:] != (self._meta["dim"],):
            return None
        return _Derived(generation, rows, bm25, vectors)

    # searching ------------------------------------------------------------------------------------
    def _allowed(self, filters: Filters | None, derived: _Derived) -> np.ndarray | None:
        import numpy as np

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

    @_names_damage
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
        restrict which chunks are scored at all. While another process is indexing (``writer_active``),
        results come from what it has committed so far.
        """
        from winnow.retrieve.fusion import reciprocal_rank_fusion, weighted_score_fusion

        if not isinstance(query, str) or not query.strip():
            raise ValueError("query is empty: give some words to search for")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        parsed = Filters.parse(filters)
        with self._lock, self._store.snapshot():  # one committed state, even while a writer commits
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
            out.append(
                Candidate(
                    text=f["text"],
                    doc_id=f["doc_id"],
                    chunk_id=f["chunk_id"],
                    title=f["title"],
                    source=f["source"],
                    span=f["span"],
                    score=float(score),
                    rank=rank,
                    updated_at=f["updated_at"],
                    authority=f["authority"],
                    metadata=f["metadata"],
                )
            )
        return out

    # inspection -----------------------------------------------------------------------------------
    @_names_damage
    def get_document(self, doc_id: str) -> Document | None:
        with self._lock:
            return self._store.document(doc_id)

    @_names_damage
    def __len__(self) -> int:
        return self._store.counts()[0]

    @_names_damage
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


# one call of Index.add ------------------------------------------------------------------------------
class _Progress:
    """The indexing bar: whole counts of documents (of ``total`` when known) and chunks, and an ETA.

    tqdm's own counter, which drives the ETA, also moves by the share of the chunks at hand that are
    embedded, so a large file keeps the ETA moving; the numbers shown stay whole.
    """

    def __init__(self, enabled: bool, total: int | None):
        from tqdm.auto import tqdm

        shape = "indexing: {percentage:3.0f}%|{bar:20}| {desc} [{elapsed}<{remaining}]"
        self.enabled = enabled
        self.total = total
        self.done = 0
        self._bar = tqdm(
            total=total,
            desc="starting",
            bar_format=shape if total else "indexing: {desc} [{elapsed}]",
            disable=not enabled,
        )

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.close()

    def note(self, message: str) -> None:
        if self.enabled:
            self._bar.write(message, file=sys.stderr)

    def show(self, stats: AddStats, in_flight: float = 0.0) -> None:
        """``in_flight``: documents' worth of uncommitted work that is embedded already."""
        if self.total is not None and self.done > self.total:
            self.total = self._bar.total = self.done  # the caller's total was an estimate
        documents = f"{self.done:,}/{self.total:,}" if self.total else f"{self.done:,}"
        self._bar.set_description_str(
            f"{documents} documents, {stats.chunks_embedded:,} chunks embedded, "
            f"{stats.chunks_reused:,} reused",
            refresh=False,
        )
        self._bar.update(self.done + in_flight - self._bar.n)


@dataclass
class _Changed:
    """A changed document read but not committed yet: its chunks with their text hashes."""

    document: Document
    content_hash: str
    chunks: list[tuple[Chunk, str]]
    kind: Literal["added", "updated"]


@dataclass
class _AddRun:
    """What one ``Index.add`` has read but not committed, and when it last committed.

    A document is committed whole, once all its chunks have vectors. The vectors embedded since the
    last commit for documents that are not whole yet are committed to SQLite's pending table, so a
    large file is saved in slices and a rerun after a kill does not embed them again.
    """

    index: Index
    bar: _Progress
    every_seconds: float
    every_chunks: int
    stats: AddStats = field(default_factory=AddStats)
    changed: dict[str, _Changed] = field(default_factory=dict)
    chunks: int = 0  # chunks of the documents in ``changed``
    to_embed: dict[str, str] = field(default_factory=dict)  # text hash -> text, not embedded yet
    vectors: dict[str, np.ndarray] = field(default_factory=dict)  # text hash -> vector, for ``changed``
    fresh: list[str] = field(default_factory=list)  # text hashes embedded since the last commit
    last_commit: float = field(default_factory=time.monotonic)

    def take(self, doc: Document, embedded: Sequence[tuple[Chunk, np.ndarray]] | None = None) -> None:
        """Skip ``doc`` if it is indexed unchanged, else chunk it and look up the vectors already known.

        ``embedded``: its chunks and their vectors, made elsewhere (used as given, not chunked here).
        """
        import numpy as np

        index, stats = self.index, self.stats
        earlier = self.changed.pop(doc.id, None)
        if earlier is not None:  # the same id twice in one run: the later one wins, counted once
            setattr(stats, earlier.kind, getattr(stats, earlier.kind) - 1)
            self.chunks -= len(earlier.chunks)
        content_hash = index._content_hash(doc)
        known = index._store.content_hashes([doc.id]).get(doc.id)
        if known == content_hash:
            stats.unchanged += 1
            self.bar.done += 1
            self.bar.show(stats)
            return
        kind: Literal["added", "updated"] = "added" if known is None else "updated"
        setattr(stats, kind, getattr(stats, kind) + 1)
        pieces = (
            embedded if embedded is not None else [(c, None) for c in index.chunker.split(doc.id, doc.text)]
        )
        dim = int(index._meta["dim"])
        chunks, texts, given = [], {}, {}
        for chunk, vector in pieces:
            text = title_and_text(doc.title, chunk.text)
            text_hash = _hash(text)
            chunks.append((chunk, text_hash))
            texts[text_hash] = text
            if vector is not None:
                if np.shape(vector) != (dim,):
                    raise ValueError(
                        f"document {doc.id!r}: a vector of shape {np.shape(vector)}, not ({dim},)"
                    )
                given[text_hash] = np.asarray(vector, dtype=np.float32)
        self.vectors.update(given)
        stats.chunks_embedded += len(given)
        unseen = [h for h in texts if h not in self.vectors and h not in self.to_embed]
        self.vectors.update(index._store.embeddings_by_hash(unseen, dim))
        for _, text_hash in chunks:
            if text_hash in given:
                continue
            if text_hash in self.vectors or text_hash in self.to_embed:
                stats.chunks_reused += 1
            else:
                self.to_embed[text_hash] = texts[text_hash]
        self.changed[doc.id] = _Changed(doc, content_hash, chunks, kind)
        self.chunks += len(chunks)

    def due(self) -> bool:
        """Whether enough is read to embed and commit: ``every_chunks`` chunks, or ``every_seconds``."""
        return self.chunks >= self.every_chunks or (
            bool(self.changed) and time.monotonic() - self.last_commit >= self.every_seconds
        )

    def embed_and_commit(self) -> None:
        """Embed what is missing, committing every interval on the way, then commit everything read."""
        hashes = list(self.to_embed)
        texts = [self.to_embed[h] for h in hashes]
        embedded = 0
        for positions, vectors in self.index.embedder.encode_batches(texts):
            for position, vector in zip(positions, vectors, strict=True):
                text_hash = hashes[position]
                self.vectors[text_hash] = vector
                del self.to_embed[text_hash]
                self.fresh.append(text_hash)
            embedded += len(positions)
            self.stats.chunks_embedded += len(positions)
            self.bar.show(self.stats, len(self.changed) * embedded / len(hashes))
            if (
                len(self.fresh) >= self.every_chunks
                or time.monotonic() - self.last_commit >= self.every_seconds
            ):
                self.commit()
        self.commit()

    def commit(self) -> None:
        """One transaction: the documents whose chunks all have vectors, and the fresh vectors of the rest.

        Documents are committed in the order they were read (a whole one waits behind one that is not
        yet), so chunk rows, and the order of tied scores, do not depend on when commits happened.
        """
        whole = list(
            itertools.takewhile(lambda c: all(h in self.vectors for _, h in c.chunks), self.changed.values())
        )
        written = {h for c in whole for _, h in c.chunks}
        pending = [(h, self.vectors[h]) for h in self.fresh if h not in written]
        if whole or pending:
            self.index._store.write_batch(
                [(c.document, c.content_hash) for c in whole],
                [(chunk, h, self.vectors[h]) for c in whole for chunk, h in c.chunks],
                self.index._generation() + 1,
                pending,
            )
        for c in whole:
            del self.changed[c.document.id]
            self.chunks -= len(c.chunks)
        needed = {h for c in self.changed.values() for _, h in c.chunks}
        self.vectors = {h: v for h, v in self.vectors.items() if h in needed}
        self.fresh = []
        self.last_commit = time.monotonic()
        self.bar.done += len(whole)
        self.bar.show(self.stats)
