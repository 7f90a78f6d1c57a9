"""`winnow rerank`: rank documents from a file or stdin against a query."""

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from winnow.cli.common import CascadeKeepOption, CascadeOption, build_reranker, console, err_console, snippet
from winnow.errors import WinnowError
from winnow.models import DEFAULT_RERANKER
from winnow.records import as_candidate
from winnow.rerank.cascade import DEFAULT_CASCADE_KEEP
from winnow.rerank.inputs import check_query


def read_documents(source: str) -> list[Any]:
    """Documents from a .jsonl file (one JSON object or string per line), a text file (one per line),
    or '-' for standard input (JSON lines if every line parses, else one document per line).

    Checked before any model loads: a line that is not a document, or no documents at all, fails with
    ``file:line`` and the reason.
    """
    if source == "-":
        lines = sys.stdin.read().splitlines()
        name = "<stdin>"
    else:
        path = Path(source)
        if path.is_dir():
            raise WinnowError(f"--docs {path} is a folder; give a .jsonl or .txt file")
        if not path.is_file():
            raise WinnowError(f"--docs: no such file: {path}")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise WinnowError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        name = str(path)
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    if not numbered:
        raise WinnowError(f"no documents in {name}: it is empty")
    as_json = name.endswith(".jsonl") or (name == "<stdin>" and all(_is_json(line) for _, line in numbered))
    if not as_json:
        return [line for _, line in numbered]
    documents = []
    for number, line in numbered:
        try:
            document = json.loads(line)
        except json.JSONDecodeError as exc:
            raise WinnowError(f"{name}:{number}: not valid JSON ({exc.msg})") from None
        try:
            as_candidate(document, len(documents))
        except TypeError as exc:
            raise WinnowError(f"{name}:{number}: {exc}") from None
        documents.append(document)
    return documents


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except json.JSONDecodeError:
        return False
    return line.lstrip().startswith(("{", '"'))


def rerank(
    query: Annotated[str, typer.Argument(help="The query to rank documents against.")],
    docs: Annotated[
        str, typer.Option("--docs", "-d", help="Documents: .jsonl, .txt (one per line), or - for stdin.")
    ],
    top_k: Annotated[int | None, typer.Option("--top-k", "-k", min=1, help="Show only the best k.")] = None,
    model: Annotated[
        str, typer.Option("--model", "-m", help="Short name, Hugging Face id or local path.")
    ] = (DEFAULT_RERANKER),
    backend: Annotated[str, typer.Option(help="auto, torch, onnx, onnx-int8 or openvino.")] = "auto",
    max_length: Annotated[int, typer.Option(help="Max tokens of query + document.")] = 512,
    windows: Annotated[bool, typer.Option(help="Score long documents in overlapping windows.")] = False,
    cascade: CascadeOption = None,
    cascade_keep: CascadeKeepOption = DEFAULT_CASCADE_KEEP,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines instead of a table.")] = False,
) -> None:
    """Rerank documents against a query with a cross-encoder.

    Example:

        winnow rerank "how does BM25 saturate term frequency?" --docs passages.jsonl --top-k 5

        cat passages.txt | winnow rerank "what is RRF?" --docs - --json

        winnow rerank "what is RRF?" --docs top100.jsonl --cascade minilm-l2 --cascade-keep 30
    """
    check_query(query)  # bad input fails in a moment, before the model loads
    documents = read_documents(docs)
    reranker = build_reranker(
        model, cascade, cascade_keep, backend=backend, max_length=max_length, windows=windows
    )
    ranking = reranker.rerank(query, documents, top_k=top_k)
    if as_json:
        for rank, result in enumerate(ranking, start=1):
            row = {
                "rank": rank,
                "index": result.index,
                "score": round(result.score, 6),
                "probability": round(result.probability, 6),
                "truncated": result.truncated,
                "document": result.document,
            }
            if result.span is not None:
                row["span"] = list(result.span)
            print(json.dumps(row, ensure_ascii=False))
        return
    table = Table(title=f"{len(ranking)} of {len(documents)} documents, {reranker!r}")
    table.add_column("rank", justify="right")
    table.add_column("input #", justify="right")
    table.add_column("score", justify="right")
    table.add_column("prob.", justify="right")
    table.add_column("document")
    for rank, result in enumerate(ranking, start=1):
        text = result.text if result.span is None else result.text[result.span[0] : result.span[1]]
        score, probability = f"{result.score:.3f}", f"{result.probability:.3f}"
        table.add_row(str(rank), str(result.index), score, probability, snippet(text, 110))
    console.print(table)
    if ranking.truncated:
        err_console.print(
            f"[yellow]{ranking.truncated} document(s) exceeded max_length={reranker.max_length} "
            "tokens and were truncated; use --windows to score them whole.[/yellow]"
        )
