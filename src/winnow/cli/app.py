"""The Typer application every `winnow` subcommand registers on."""

from __future__ import annotations

import typer

from winnow.cli.common import WinnowGroup

app = typer.Typer(
    name="winnow",
    cls=WinnowGroup,
    help="Two-stage retrieval for RAG: recall candidates, rerank them with a cross-encoder, measure it.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Two-stage retrieval for RAG: recall candidates, rerank them with a cross-encoder, measure it.

    Example:

        winnow demo

        winnow rerank "what is BM25?" --docs passages.jsonl --top-k 5
    """
