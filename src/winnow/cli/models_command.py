"""`winnow models`: the short model names, what each is for, and whether it is on this machine."""

import json
from typing import Annotated

import typer
from rich.table import Table

from winnow.cli.common import console


def models(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per model.")] = False,
) -> None:
    """List the models Winnow knows by short name: purpose, size, licence, quality and where it is.

    Quality is TREC DL 2019 nDCG@10 (reranking BM25's top 100), published by the model's authors or
    measured here, with its source. A model that is not here downloads on first use (unless
    HF_HUB_OFFLINE is set); hosted APIs are named provider:model and need the provider's key.

    Example:

        winnow models

        winnow models --json | jq 'select(.location == null) | .name'
    """
    from winnow.models.catalog import catalog_rows
    from winnow.models.hub import hub_offline

    rows = catalog_rows()
    missing = "no (offline)" if hub_offline() else "no, fetched on use"
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return
    table = Table(title="Models by short name (pass one to --model / Reranker(...))")
    for column in ("name", "purpose", "params", "size", "licence", "DL19 nDCG@10", "source", "here"):
        table.add_column(column, justify="right" if column in ("params", "size", "DL19 nDCG@10") else "left")
    for row in rows:
        table.add_row(
            row["name"],
            row["purpose"],
            row["parameters"],
            f"{row['size_mb']} MB",
            row["licence"],
            "–" if row["dl19_ndcg10"] is None else f"{row['dl19_ndcg10']:.3f}",
            row["source"],
            "yes" if row["location"] else missing,
        )
    console.print(table)
    console.print(
        "Hosted APIs, same Reranker API: cohere:rerank-v3.5 (CO_API_KEY), voyage:rerank-2 (VOYAGE_API_KEY), "
        "jina:jina-reranker-v2-base-multilingual (JINA_API_KEY); see docs/integrations.md."
    )
