"""`winnow search`: stage-1 recall from an index or a vector database, then reranking."""

import json
from typing import Annotated

import typer
from rich.table import Table

from winnow.cli.common import (
    DEFAULT_INDEX,
    CascadeKeepOption,
    CascadeOption,
    IndexOption,
    MinConfidenceOption,
    RerankerModelOption,
    build_reranker,
    console,
    err_console,
    errors,
    open_stage1,
    short_source,
    snippet,
)
from winnow.rerank.cascade import DEFAULT_CASCADE_KEEP
from winnow.signals.abstention import Abstention, effective_min_confidence


def print_abstention(abstention: Abstention, as_json: bool) -> None:
    """The one line a command prints instead of results nobody should trust (stderr under --json,
    so stdout stays empty: no results)."""
    line = f"{abstention.summary}; --min-confidence 0 shows them anyway"
    (err_console if as_json else console).print(line, highlight=False, soft_wrap=True)


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
    model: RerankerModelOption = None,
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
        with open_stage1(index_dir, store) as idx:
            reranker = build_reranker(model, cascade, cascade_keep) if rerank else None
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
                        "updated_at": r.updated_at,
                        "authority": r.authority,
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
        table.add_row(str(r.rank), moved, f"{score:.3f}", short_source(r.source), snippet(r.text))
    console.print(table)
