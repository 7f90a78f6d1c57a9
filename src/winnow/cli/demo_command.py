"""`winnow demo`: the whole two-stage search on the bundled sample corpus, in one command."""

import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from winnow.cli.common import RerankerModelOption, build_reranker, console, errors
from winnow.cli.index_command import build_index
from winnow.records import AuthorityRules

SAMPLE_CORPUS = Path(__file__).resolve().parents[1] / "data" / "sample_corpus"
DEMO_QUERIES = (
    "why do my reads and writes block each other in sqlite?",
    "my load balancer returns random 502 errors",
    "combine keyword search with embeddings",
)


def demo(
    model: RerankerModelOption = None,
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
        stats_, _ = build_index([SAMPLE_CORPUS], folder, {}, AuthorityRules(), progress=False)
        console.print(
            f"indexed the sample corpus ({stats_.added + stats_.updated + stats_.unchanged} documents) "
            f"in {time.perf_counter() - start:.1f} s"
        )
        with Index.open(folder) as idx:
            pipeline = Pipeline(idx, build_reranker(model))
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
