"""`winnow index`, `stats` and `delete`: build, inspect and prune a Winnow index from the command line."""

import functools
import itertools
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from winnow.cli.common import DEFAULT_INDEX, IndexOption, console, err_console, errors
from winnow.errors import WinnowError
from winnow.models import DEFAULT_EMBEDDING_MODEL
from winnow.records import AuthorityRules
from winnow.retrieve.writing import COMMIT_EVERY_CHUNKS, COMMIT_EVERY_SECONDS

if TYPE_CHECKING:
    from winnow.retrieve.ingest import IngestReport


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


def _report_skipped(report: "IngestReport") -> None:
    if not report.skipped:
        return
    err_console.print(f"[yellow]skipped {len(report.skipped)}:[/yellow]")
    for where, reason in report.skipped[:20]:
        err_console.print(f"  {where}: {reason}")
    if len(report.skipped) > 20:
        err_console.print(f"  … and {len(report.skipped) - 20} more")


def build_index(
    paths: list[Path],
    index_dir: Path,
    settings: dict[str, Any],
    rules: AuthorityRules,
    progress: bool,
    commit_every_seconds: float = COMMIT_EVERY_SECONDS,
    commit_every_chunks: int = COMMIT_EVERY_CHUNKS,
):
    """Ingest ``paths`` into the index at ``index_dir``; returns (add stats, ingest report).

    Waits (saying so) while another process writes to the same index. `winnow demo` builds with it too.
    """
    from winnow.retrieve import Index
    from winnow.retrieve.ingest import IngestError, IngestReport, count_documents, iter_documents

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
    ray: Annotated[
        bool, typer.Option("--ray", help="Embed on Ray: an actor pool embeds, this process writes.")
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="With --ray: the cluster's HOST:PORT (default: Ray on this machine).")
    ] = None,
    ray_actors: Annotated[int, typer.Option(min=1, help="With --ray: embedding actors (1 CPU each).")] = 2,
) -> None:
    """Add files and folders to an index (created if missing); unchanged documents are skipped.

    Work is committed every --commit-every-seconds or --commit-every-chunks, whichever comes first (a
    large file too, in slices): stopping or killing it loses at most that much, and running the same
    command again resumes. A second `winnow index` on the same index waits for the first.

    Example:

        winnow index docs/ notes.md --index .winnow-index

        winnow index ../shared/data/beir/scifact --index scifact-index --chunk-tokens 0

        winnow index corpus/ --ray --ray-address 10.0.0.5:6379 --ray-actors 16    (docs/scaling.md)
    """
    with errors():
        settings = {
            "embedding_model": model,
            "chunk_tokens": chunk_tokens or None,
            "chunk_overlap": chunk_overlap if chunk_tokens else 0,
        }
        start = time.perf_counter()
        build: Any = build_index
        if ray:
            from winnow.scale.indexing import build_index_on_ray

            build = functools.partial(build_index_on_ray, address=ray_address, actors=ray_actors)
        stats, report = build(
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
