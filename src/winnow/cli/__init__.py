"""The `winnow` command line. Each subcommand lives in its own module and is registered here."""

from __future__ import annotations

from winnow.cli import (
    ask_command,
    calibrate_command,
    demo_command,
    eval_command,
    index_command,
    models_command,
    rerank_command,
    search_command,
    serve_command,
    train_command,
)
from winnow.cli.app import app

app.command("rerank")(rerank_command.rerank)
app.command("index")(index_command.index)
app.command("search")(search_command.search)
app.command("stats")(index_command.stats)
app.command("delete")(index_command.delete)
app.command("demo")(demo_command.demo)
app.command("train")(train_command.train)
app.command("eval")(eval_command.eval_dataset)
app.command("ask")(ask_command.ask)
app.command("calibrate")(calibrate_command.calibrate)
app.command("models")(models_command.models)
app.command("serve")(serve_command.serve)


def main() -> None:
    """Entry point of the `winnow` console script."""
    app()
