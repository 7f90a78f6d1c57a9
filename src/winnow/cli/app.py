"""The Typer application and the table of its subcommands.

A subcommand's module is imported, and its options built, only when that subcommand runs or `winnow
--help` lists it: `winnow stats` then pays for neither `serve`'s imports nor the other eleven commands'
option parsing (Click's "lazily loading subcommands" pattern). The command modules leave out `from
__future__ import annotations` for the same reason: Typer reads every option from the annotations, and
evaluating them from strings added about 50 ms to `winnow --help`.
"""

from __future__ import annotations

import importlib
from typing import Any

import typer
import typer.main

from winnow.cli.common import WinnowGroup

# Each subcommand, in the order `winnow --help` lists them, and the function that runs it.
COMMANDS = {
    "rerank": "winnow.cli.rerank_command:rerank",
    "index": "winnow.cli.index_command:index",
    "search": "winnow.cli.search_command:search",
    "stats": "winnow.cli.index_command:stats",
    "delete": "winnow.cli.index_command:delete",
    "demo": "winnow.cli.demo_command:demo",
    "train": "winnow.cli.train_command:train",
    "eval": "winnow.cli.eval_command:eval_dataset",
    "ask": "winnow.cli.ask_command:ask",
    "calibrate": "winnow.cli.calibrate_command:calibrate",
    "models": "winnow.cli.models_command:models",
    "serve": "winnow.cli.serve_command:serve",
}


def load_command(name: str) -> Any:
    """The Click command for subcommand ``name``, built by Typer from its function."""
    module, function = COMMANDS[name].split(":")
    single = typer.Typer(rich_markup_mode="rich", add_completion=False)
    single.command(name)(getattr(importlib.import_module(module), function))
    return typer.main.get_command(single)


class LazyWinnowGroup(WinnowGroup):
    """The `winnow` group, loading each subcommand from `COMMANDS` the first time it is asked for."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name in COMMANDS and cmd_name not in self.commands:
            self.add_command(load_command(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        if args and args[0] not in COMMANDS:  # a typo: Typer's "did you mean" looks only at loaded commands
            for name in COMMANDS:
                self.get_command(ctx, name)
        return super().resolve_command(ctx, args)


app = typer.Typer(
    name="winnow",
    cls=LazyWinnowGroup,
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
