"""`winnow index`, `search`, `stats`, `delete` and `demo`: Winnow's own corpus from the command line."""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from winnow.cli.common import console, err_console, errors
from winnow.errors import WinnowError
from winnow.models import DEFAULT_EMBEDDING_MODEL
from winnow.rerank.cascade import DEFAULT_CASCADE_KEEP
from winnow.retrieve.ingest import AuthorityRules, IngestError, IngestReport, count_documents, iter_documents
from winnow.retrieve.writing import COMMIT_EVERY_CHUNKS, COMMIT_EVERY_SECONDS
from winnow.signals.abstention import DEFAULT_MIN_CONFIDENCE, Abstention, effective_min_confidence

DEFAULT_INDEX = Path(".winnow-index")
SAMPLE_CORPUS = Path(__file__).resolve().parents[1] / "data" / "sample_corpus"
DEMO_QUERIES = (
    "why do my reads and writes block each other in sqlite?",
    "my load balancer returns random 502 errors",
    "combine keyword search with embeddings",
)

IndexOption = Annotated[Path, typer.Option("--index", "-i", help="Index folder.")]
CascadeOption = Annotated[
    str | None,
    typer.Option(
        help="Prune the candidates with this small reranker first (e.g. minilm-l2), "
        "then rerank the best --cascade-keep with --model."
    ),
]
CascadeKeepOption = Annotated[int, typer.Option(min=1, help="Candidates the --cascade model keeps.")]
MinConfidenceOption = Annotated[
    float | None,
    typer.Option(
        help=f"Abstain when no passage's calibrated probability reaches this (0 to 1; 0 turns it off). "
        f"Default {DEFAULT_MIN_CONFIDENCE} with a calibrated model (the default model ships one), "
        "off with an uncalibrated one.",
        show_default=False,
    ),
]


def print_abstention(abstention: Abstention, as_json: bool) -> None:
    """The one line a command prints instead of results nobody should trust (stderr under --json,
    so stdout stays empty: no results)."""
    line = f"{abstention.summary}; --min-confidence 0 shows them anyway"
    (err_console if as_json else console).print(line, highlight=False, soft_wrap=True)


def _authority(rules: list[str]) -> AuthorityRules:
    patterns: dict[str, float] = {}
    for rule in rules:
        pattern, sep, weight = rule.rpartition("=")
        try:
            patterns[pattern] = float(weight)
        except ValueError:
            sep = ""
        if not sep or not pattern:
            raise ValueError(f"--authority {rule!r} must look like PATTERN=WEIGHT, e.g. '*/handbook/*=0.9'")
    return AuthorityRules(patterns)


def _report_skipped(report: IngestReport) -> None:
    if not report.skipped:
        return
    err_console.print(f"[yellow]skipped {len(report.skipped)}:[/yellow]")
    for where, reason in report.skipped[:20]:
        err_console.print(f"  {where}: {reason}")
    if len(report.skipped) > 20:
        err_console.print(f"  … and {len(report.skipped) - 20} more")


def _build(
    paths: list[Path],
    index_dir: Path,
    settings: dict[str, Any],
    rules: AuthorityRules,
    progress: bool,
    commit_every_seconds: float = COMMIT_EVERY_SECONDS,
    commit_every_chunks: int = COMMIT_EVERY_CHUNKS,
):
    """Ingest ``paths`` into the index at ``index_dir``; returns (add stats, ingest report).

    Waits (saying so) while another process writes to the same index.
    """
    from winnow.retrieve import Index

    report = IngestReport()
    documents = iter_documents(paths, report, rules)
    first = next(documents, None)
    if first is None:
        _report_skipped(report)
        raise IngestError(
            f"nothing to index in {', '.join(map(str, paths))} (no readable .txt, .md, "
            ".html, .pdf or .jsonl files)"
        )
    with Index.open_or_create(index_dir, **settings) as index:
        stats = index.add(
            itertools.chain([first], documents),
            progress=progress,
            total=count_documents(paths) if progress else None,
            commit_every_seconds=commit_every_seconds,
            commit_every_chunks=commit_every_chunks,
        )
        index.embedder.prepare_queries()  # the one-time query-model export happens here, not at first search
    return stats, report


def index(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.txt .md .html .pdf .jsonl, BEIR).")],
    index_dir: IndexOption = DEFAULT_INDEX,
    model: Annotated[str, typer.Option("--model", "-m", help="Embedding model (new index only).")] = (
        DEFAULT_EMBEDDING_MODEL
    ),
    chunk_tokens: Annotated[
        int, typer.Option(help="Tokens per chunk (new index only); 0 = whole documents.")
    ] = 256,
    chunk_overlap: Annotated[int, typer.Option(help="Tokens repeated between chunks (new index only).")] = 32,
    authority: Annotated[
        list[str] | None, typer.Option(help="Authority weight per source glob, PATTERN=WEIGHT (repeatable).")
    ] = None,
    commit_every_seconds: Annotated[
        float, typer.Option(min=0.001, help="Commit at least this often (seconds of work).")
    ] = COMMIT_EVERY_SECONDS,
    commit_every_chunks: Annotated[
        int, typer.Option(min=1, help="Commit at least every this many chunks.")
    ] = COMMIT_EVERY_CHUNKS,
) -> None:
    """Add files and folders to an index (created if missing); unchanged documents are skipped.

    Work is committed every --commit-every-seconds or --commit-every-chunks, whichever comes first (a
    large file too, in slices): stopping or killing it loses at most that much, and running the same
    command again resumes. A second `winnow index` on the same index waits for the first.

    Example:

        winnow index docs/ notes.md --index .winnow-index

        winnow index ../shared/data/beir/scifact --index scifact-index --chunk-tokens 0
    """
    with errors():
        settings = {
            "embedding_model": model,
            "chunk_tokens": chunk_tokens or None,
            "chunk_overlap": chunk_overlap if chunk_tokens else 0,
        }
        start = time.perf_counter()
        stats, report = _build(
            paths,
            index_dir,
            settings,
            _authority(authority or []),
            progress=True,
            commit_every_seconds=commit_every_seconds,
            commit_every_chunks=commit_every_chunks,
        )
        _report_skipped(report)
        console.print(
            f"indexed {report.documents} documents from {report.files_read} files into {index_dir}: "
            f"{stats.added} added, {stats.updated} updated, {stats.unchanged} unchanged; "
            f"{stats.chunks_embedded} chunks embedded, {stats.chunks_reused} reused "
            f"({time.perf_counter() - start:.1f} s)"
        )


def _snippet(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat[:width] + ("…" if len(flat) > width else "")


def search(
    query: Annotated[str, typer.Argument(help="What to search for.")],
    index_dir: IndexOption = DEFAULT_INDEX,
    store: Annotated[
        str | None,
        typer.Option(
            help="Search a vector database instead of --index: chroma://DIR, milvus://FILE.db, "
            "qdrant://DIR, postgresql://..., pinecone://HOST, or a .yaml file with uri: "
            "(see docs/integrations.md)."
        ),
    ] = None,
    mode: Annotated[str, typer.Option(help="bm25, dense or hybrid (fused BM25 + dense).")] = "hybrid",
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="Results to show.")] = 5,
    candidates: Annotated[int, typer.Option(min=1, help="Stage-1 candidates handed to the reranker.")] = 50,
    rerank: Annotated[
        bool, typer.Option(help="Rerank with the cross-encoder (--no-rerank: stage 1 only).")
    ] = True,
    model: Annotated[str | None, typer.Option("--model", "-m", help="Reranker model.")] = None,
    cascade: CascadeOption = None,
    cascade_keep: CascadeKeepOption = DEFAULT_CASCADE_KEEP,
    filters: Annotated[
        list[str] | None,
        typer.Option(
            "--filter",
            "-f",
            help="key=value on metadata, or source=GLOB, updated_after=DATE, "
            "updated_before=DATE (repeatable).",
        ),
    ] = None,
    min_confidence: MinConfidenceOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
) -> None:
    """Search an index: stage-1 recall, then reranking; shows how reranking moved each result.

    When no result's calibrated probability reaches --min-confidence, it prints one line saying so
    instead of results (exit code 0); --min-confidence 0 shows them anyway.

    Example:

        winnow search "how do I stop table bloat?" --index .winnow-index

        winnow search "tcp handshake" --mode bm25 --no-rerank --filter topic=networking --json

        winnow search "wal checkpoints" --candidates 100 --cascade minilm-l2 --cascade-keep 30

        winnow search "tls handshake" --store chroma://chroma-db?collection=docs --filter topic=networking
    """
    from winnow.pipeline import Pipeline
    from winnow.retrieve.filters import parse_filter_args

    with errors():
        if not query.strip():
            raise ValueError("query is empty: give some words to search for")
        parsed = parse_filter_args(filters or []) or None
        with _stage1(index_dir, store) as idx:
            reranker = _reranker(model, cascade, cascade_keep) if rerank else None
            threshold = effective_min_confidence(min_confidence, reranker)
            pipeline = Pipeline(idx, reranker, mode=mode, min_confidence=threshold)
            response = pipeline.search(query, candidates=max(candidates, top_k), top_k=top_k, filters=parsed)
    if response.abstention is not None:
        print_abstention(response.abstention, as_json)
        return
    if as_json:
        for r in response:
            print(
                json.dumps(
                    {
                        "rank": r.rank,
                        "stage1_rank": r.stage1_rank,
                        "stage1_score": r.stage1_score,
                        "score": r.score,
                        "probability": r.probability,
                        "doc_id": r.doc_id,
                        "chunk_id": r.chunk_id,
                        "title": r.title,
                        "source": r.source,
                        "span": r.span,
                        "text": r.text,
                        "metadata": r.metadata,
                    },
                    ensure_ascii=False,
                    default=str,
                )
            )
        return
    t = response.timings
    title = (
        f"{len(response)} of {response.candidates} candidates ({store or mode}); "
        f"stage 1 {t['stage1_ms']:.0f} ms, rerank {t['rerank_ms']:.0f} ms"
    )
    table = Table(title=title)
    table.add_column("#", justify="right")
    table.add_column("stage 1 → final", justify="center")
    table.add_column("score", justify="right")
    table.add_column("source")
    table.add_column("snippet")
    for r in response:
        score = r.score if r.score is not None else r.stage1_score
        moved = f"{r.stage1_rank} → {r.rank}"
        table.add_row(str(r.rank), moved, f"{score:.3f}", _short_source(r.source), _snippet(r.text))
    console.print(table)


@contextmanager
def _stage1(index_dir: Path, store: str | None):
    """Winnow's own index, or the vector database that ``--store`` names (a URI or a .yaml file)."""
    if store:
        from winnow.stores.open import open_store

        yield open_store(store)
        return
    from winnow.retrieve import Index

    with Index.open(index_dir) as idx:
        if len(idx) == 0:  # said before any model loads, instead of an empty table
            raise WinnowError(f"the index at {index_dir} is empty: add documents with `winnow index PATH`")
        if idx.writer_active:
            err_console.print("note: indexing is in progress; results cover what it has committed so far")
        yield idx


def _short_source(source: str) -> str:
    return source if len(source) <= 40 else "…" + source[-39:]


def _reranker(model: str | None, cascade: str | None = None, keep: int = DEFAULT_CASCADE_KEEP):
    """The reranker a command asked for: ``model`` (default: Winnow's), behind ``cascade`` when given."""
    from winnow.rerank import DEFAULT_RERANKER, Cascade, Reranker

    if cascade:
        return Cascade(cascade, model or DEFAULT_RERANKER, keep=keep)
    return Reranker(model or DEFAULT_RERANKER)


def stats(index_dir: IndexOption = DEFAULT_INDEX) -> None:
    """Show what an index holds and how it was built.

    Example:

        winnow stats --index .winnow-index
    """
    from winnow.retrieve import Index

    with errors(), Index.open(index_dir) as idx:
        info = idx.stats()
    table = Table(title=f"index {info.path}", show_header=False)
    for key, value in [
        ("documents", f"{info.documents:,}"),
        ("chunks", f"{info.chunks:,}"),
        ("embedding model", f"{info.embedding_model} ({info.dim} dims)"),
        (
            "chunking",
            "whole documents"
            if info.chunk_tokens is None
            else f"{info.chunk_tokens} tokens, {info.chunk_overlap} overlap",
        ),
        ("vector search", "HNSW (usearch)" if info.hnsw else "exact"),
        ("size on disk", f"{info.disk_bytes / 1e6:.1f} MB"),
    ]:
        table.add_row(key, value)
    console.print(table)


def delete(
    doc_ids: Annotated[
        list[str], typer.Argument(help="Ids of the documents to remove (see `winnow search --json`).")
    ],
    index_dir: IndexOption = DEFAULT_INDEX,
) -> None:
    """Remove documents from an index by id; exits 1 if none of them was there.

    Example:

        winnow delete databases/sqlite-wal-mode.md --index .winnow-index
    """
    from winnow.retrieve import Index

    with errors(), Index.open(index_dir) as idx:
        deleted = idx.delete(doc_ids)
        if not deleted:
            raise WinnowError(f"none of {', '.join(doc_ids)} is in the index at {index_dir}")
    console.print(f"deleted {deleted} of {len(doc_ids)} documents from {index_dir}")


def demo(
    model: Annotated[str | None, typer.Option("--model", "-m", help="Reranker model.")] = None,
    index_dir: Annotated[Path | None, typer.Option("--index", "-i", help="Keep the demo index here.")] = None,
) -> None:
    """Index the bundled 50-document sample corpus, run a few queries, show stage 1 against reranked order.

    Example:

        winnow demo

        winnow demo --index demo-index   # keep the index, then: winnow search "..." --index demo-index
    """
    from winnow.pipeline import Pipeline
    from winnow.retrieve import Index

    with errors(), tempfile.TemporaryDirectory(prefix="winnow-demo-") as tmp:
        folder = index_dir or Path(tmp) / "index"
        start = time.perf_counter()
        stats_, _ = _build([SAMPLE_CORPUS], folder, {}, AuthorityRules(), progress=False)
        console.print(
            f"indexed the sample corpus ({stats_.added + stats_.updated + stats_.unchanged} documents) "
            f"in {time.perf_counter() - start:.1f} s"
        )
        with Index.open(folder) as idx:
            pipeline = Pipeline(idx, _reranker(model))
            for query in DEMO_QUERIES:
                response = pipeline.search(query, candidates=20, top_k=5)
                table = Table(title=f"“{query}”")
                table.add_column("final", justify="right")
                table.add_column("stage 1", justify="right")
                table.add_column("prob.", justify="right")
                table.add_column("title")
                for r in response:
                    table.add_row(str(r.rank), str(r.stage1_rank), f"{r.probability:.2f}", r.title)
                console.print(table)
