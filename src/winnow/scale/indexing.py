"""`winnow index PATH --ray`: read and chunk on Ray Data, embed on an actor pool, write with one writer.

Embedding is what indexing costs, so that is what spreads out:

1. Ray Data tasks read the files (``winnow.retrieve.ingest``) and chunk each document with the index's
   own chunker. A document the index already holds unchanged (its id and content hash are in the
   table of committed documents handed to every task) is passed on without chunks: nothing embeds it.
2. An actor pool embeds: each actor loads the model once (``shared_embedder``) and embeds a batch of
   documents' chunks with ``Embedder.encode``, which batches by token budget.
3. This process is the one writer: ``Index.add_embedded`` commits the vectors as ``Index.add`` would
   (SQLite is the system of record; every interval committed, the writer lock held), and checks each
   document's content hash itself, so a document the tasks took for unchanged but that is not is
   chunked and embedded here.

Ray Data keeps the documents in the order they were read (``preserve_order``), so the index gets the
same chunk rows as a plain ``winnow index``. An actor that dies is restarted and its batch retried (Ray
Data's actor pools do both by default); a batch's pieces reach the writer once, and the writer upserts
by document id, so nothing is lost or written twice. Killing the writer loses at most one commit
interval; running the command again skips what was committed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import pickle
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from winnow.extras import require_extra
from winnow.records import AuthorityRules, Chunk, Document, title_and_text
from winnow.retrieve.index import AddStats, Index, content_hash
from winnow.retrieve.ingest import IngestError, IngestReport, count_documents, expand_paths, read_file
from winnow.retrieve.writing import COMMIT_EVERY_CHUNKS, COMMIT_EVERY_SECONDS
from winnow.scale.cluster import ray_cluster

with require_extra("ray", "ray"):
    import ray
    import ray.data

DEFAULT_ACTORS = 2
# Documents per embedding call: enough chunks for full token-budget batches, small enough that a batch
# an actor loses (and redoes) is seconds of work.
DOCUMENTS_PER_BATCH = 32
# Ray Data's blocks (the unit one actor takes) of about this many bytes of read documents: a few dozen
# abstracts, so even one large .jsonl file keeps every actor busy (Ray's default, 128 MiB, would make it
# one block for one actor).
BLOCK_BYTES = 64 * 1024


@dataclass
class _Piece:
    """One document on its way from a reader to the writer (pickled between Ray workers), or, without a
    document, a reader's ingest report of its files."""

    document: Document | None = None
    chunks: list[Chunk] = field(default_factory=list)
    committed: bool = False  # the index holds it unchanged: not chunked or embedded
    vectors: np.ndarray | None = None
    report: IngestReport | None = None


@dataclass(frozen=True)
class _Settings:
    """What readers and embedders need to chunk and embed exactly as the index does."""

    model: str
    chunk_tokens: int | None
    chunk_overlap: int
    authority: AuthorityRules


def _document_key(doc_id: str, digest: str) -> np.uint64:
    """A document id and content hash as 64 bits, for the committed table (a collision only means a
    document is chunked and embedded by the writer instead of the actors)."""
    return np.frombuffer(hashlib.sha1(f"{doc_id}\x00{digest}".encode()).digest()[:8], dtype=np.uint64)[0]


def _committed_keys(index: Index) -> np.ndarray:
    """Sorted keys of every committed document: 8 bytes each, shared by the tasks without copies."""
    keys = np.fromiter(
        (_document_key(doc_id, digest) for doc_id, digest in index.committed_documents()), dtype=np.uint64
    )
    keys.sort()
    return keys


@functools.cache
def _chunker(model: str, chunk_tokens: int | None, chunk_overlap: int):
    """One chunker per worker process (loading the tokenizer once, not once per batch of files)."""
    from winnow.models import resolve_model
    from winnow.retrieve.chunking import Chunker

    return Chunker(resolve_model(model), chunk_tokens, chunk_overlap)


def _pickled(pieces: list[_Piece]) -> dict[str, np.ndarray]:
    column = np.empty(len(pieces), dtype=object)
    column[:] = [pickle.dumps(piece, protocol=pickle.HIGHEST_PROTOCOL) for piece in pieces]
    return {"piece": column}


def _read_and_chunk(
    batch: dict[str, np.ndarray], settings: _Settings, committed: np.ndarray
) -> Iterator[dict[str, np.ndarray]]:
    """Ray Data step 1: files in, documents with their chunks out (committed ones without)."""
    chunker = _chunker(settings.model, settings.chunk_tokens, settings.chunk_overlap)
    report = IngestReport()
    pieces: list[_Piece] = []
    for file, root in zip(batch["file"], batch["root"], strict=True):
        for doc in read_file(Path(file), Path(root), report, settings.authority):
            key = _document_key(doc.id, content_hash(doc, settings.chunk_tokens, settings.chunk_overlap))
            at = int(np.searchsorted(committed, key))
            if at < len(committed) and committed[at] == key:
                pieces.append(_Piece(doc, committed=True))
            else:
                pieces.append(_Piece(doc, chunker.split(doc.id, doc.text)))
            if len(pieces) >= DOCUMENTS_PER_BATCH:
                yield _pickled(pieces)
                pieces = []
    yield _pickled([*pieces, _Piece(report=report)])


class _Embedder:
    """Ray Data step 2, one per actor: the model loaded once, a batch of documents' chunks per call."""

    def __init__(self, model: str, device: str | None, dtype: str | None) -> None:
        from winnow.retrieve.dense import shared_embedder

        self.embedder = shared_embedder(model, device, dtype)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        pieces: list[_Piece] = [pickle.loads(raw) for raw in batch["piece"]]
        todo = [p for p in pieces if p.document is not None and not p.committed]
        texts = [title_and_text(p.document.title, c.text) for p in todo for c in p.chunks]  # type: ignore[union-attr]
        vectors = self.embedder.encode(texts)
        start = 0
        for piece in todo:
            piece.vectors = vectors[start : start + len(piece.chunks)]
            start += len(piece.chunks)
        return _pickled(pieces)


@contextlib.contextmanager
def _data_context(**values: Any) -> Iterator[Any]:
    """Ray Data's current DataContext with ``values`` set, restored on exit (with its execution options)."""
    context = ray.data.DataContext.get_current()
    saved = {name: getattr(context, name) for name in values}
    saved_options = copy.copy(context.execution_options)
    for name, value in values.items():
        setattr(context, name, value)
    try:
        yield context
    finally:
        for name, value in saved.items():
            setattr(context, name, value)
        context.execution_options = saved_options


def _merge(total: IngestReport, part: IngestReport) -> None:
    total.files_read += part.files_read
    total.documents += part.documents
    total.skipped.extend(part.skipped)


def _for_the_writer(
    rows: Iterable[dict[str, Any]], report: IngestReport
) -> Iterator[tuple[Document, list[tuple[Chunk, np.ndarray]] | None]]:
    """Pieces as ``Index.add_embedded`` takes them; reports go into ``report``."""
    for row in rows:
        piece: _Piece = pickle.loads(row["piece"])
        if piece.report is not None:
            _merge(report, piece.report)
        elif piece.committed:
            yield piece.document, None  # type: ignore[misc]
        else:
            yield piece.document, list(zip(piece.chunks, piece.vectors, strict=True))  # type: ignore[arg-type,misc]


def embed_into(
    index: Index,
    files: list[tuple[Path, Path]],
    authority: AuthorityRules | None = None,
    actors: int = DEFAULT_ACTORS,
    cpus_per_actor: float = 1.0,
    gpus_per_actor: float = 0.0,
    device: str | None = None,
    dtype: str | None = None,
    progress: bool = True,
    total: int | None = None,
    commit_every_seconds: float = COMMIT_EVERY_SECONDS,
    commit_every_chunks: int = COMMIT_EVERY_CHUNKS,
) -> tuple[AddStats, IngestReport]:
    """Index ``files`` ((file, root) pairs from ``expand_paths``) into ``index`` on the connected Ray.

    ``actors`` embedders, each with ``cpus_per_actor`` CPUs (its torch threads) and ``gpus_per_actor``
    GPUs; ``device`` and ``dtype`` as for ``Embedder``. Returns what the writer did and what was read.
    """
    if actors < 1:
        raise ValueError(f"actors must be at least 1, got {actors}")
    settings = _Settings(
        index.embedding_model, index.chunker.max_tokens, index.chunker.overlap, authority or AuthorityRules()
    )
    items = [{"file": str(file), "root": str(root)} for file, root in files]
    # A Dataset keeps the DataContext it was created under, so these settings apply to this run only.
    with _data_context(
        target_max_block_size=BLOCK_BYTES,
        enable_progress_bars=False,  # the writer's bar counts documents and chunks, with an ETA
    ) as context:
        context.execution_options.preserve_order = True  # the chunk rows of a plain `winnow index`
        pieces = (
            ray.data.from_items(items, override_num_blocks=len(items))
            .map_batches(
                _read_and_chunk,
                batch_size=1,
                fn_kwargs={"settings": settings, "committed": _committed_keys(index)},
                # Light beside the model, and never waiting for a CPU the actors hold (with as many
                # actors as CPUs, a reader that needed one would wait forever).
                num_cpus=0,
            )
            .map_batches(
                _Embedder,
                batch_size=DOCUMENTS_PER_BATCH,
                fn_constructor_kwargs={"model": settings.model, "device": device, "dtype": dtype},
                compute=ray.data.ActorPoolStrategy(size=actors),
                num_cpus=cpus_per_actor,
                num_gpus=gpus_per_actor,
            )
        )
    report = IngestReport()
    with warnings.catch_warnings():
        # Ray Data counts one input (a single file) and warns the actors will idle; the reader splits
        # it into blocks of BLOCK_BYTES, so they do not.
        warnings.filterwarnings("ignore", "The minimum number of concurrent actors", UserWarning)
        stats = index.add_embedded(
            _for_the_writer(pieces.iter_rows(), report),
            progress=progress,
            total=total,
            commit_every_seconds=commit_every_seconds,
            commit_every_chunks=commit_every_chunks,
        )
    return stats, report


def build_index_on_ray(
    paths: list[Path],
    index_dir: Path,
    index_settings: dict[str, Any],
    authority: AuthorityRules | None = None,
    address: str | None = None,
    actors: int = DEFAULT_ACTORS,
    progress: bool = True,
    commit_every_seconds: float = COMMIT_EVERY_SECONDS,
    commit_every_chunks: int = COMMIT_EVERY_CHUNKS,
) -> tuple[AddStats, IngestReport]:
    """`winnow index --ray`: find the files, join the cluster, then open (or create) the index and fill it.

    In that order, so a path with nothing to index or an unreachable cluster writes nothing.
    """
    report = IngestReport()
    files = list(expand_paths(paths, report))
    if not files:
        raise IngestError(
            f"nothing to index in {', '.join(map(str, paths))} (no .txt, .md, .html, .pdf or .jsonl files)"
        )
    with ray_cluster(address), Index.open_or_create(index_dir, **index_settings) as index:
        stats, read = embed_into(
            index,
            files,
            authority,
            actors=actors,
            progress=progress,
            total=count_documents(paths) if progress else None,
            commit_every_seconds=commit_every_seconds,
            commit_every_chunks=commit_every_chunks,
        )
        index.embedder.prepare_queries()  # the one-time query-model export, here rather than at a search
    _merge(report, read)
    return stats, report
