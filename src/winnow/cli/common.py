"""What every `winnow` command shares: the consoles it prints on, how predictable failures end, the
options several commands take, and the reranker and stage 1 they build from those options.

A predictable failure (a missing or damaged file, an unknown model, an empty input, a mistyped option,
Ctrl-C) ends with one line on stderr and a non-zero exit code, never a traceback or a boxed panel. The
`WinnowGroup` applies this to every command registered on the app, so a new command gets it without
doing anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from winnow.errors import WinnowError
from winnow.rerank.cascade import DEFAULT_CASCADE_KEEP
from winnow.signals.abstention import DEFAULT_MIN_CONFIDENCE

if TYPE_CHECKING:
    from winnow.rerank import Cascade, Reranker

console = Console()
err_console = Console(stderr=True)

# OSError covers missing files, folders given as files and permissions; ValueError covers bad JSON,
# non-UTF-8 bytes and bad settings; TypeError a document of the wrong shape.
EXPECTED_ERRORS = (WinnowError, OSError, ValueError, TypeError)
INTERRUPTED_EXIT_CODE = 130  # what shells report for a process ended by SIGINT
# The parser's usage errors (unknown option or command, missing argument, bad value). Typer >= 0.26 carries
# its own copy of Click, older versions use Click: typer.BadParameter's base is the right class either way.
UsageError = typer.BadParameter.__bases__[0]

DEFAULT_INDEX = Path(".winnow-index")

IndexOption = Annotated[Path, typer.Option("--index", "-i", help="Index folder.")]
RerankerModelOption = Annotated[str | None, typer.Option("--model", "-m", help="Reranker model.")]
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


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """Print ``message`` as one red line on stderr and end the command with ``exit_code``."""
    one_line = " ".join(str(message).split())
    err_console.print(f"[red]error:[/red] {escape(one_line)}", soft_wrap=True, highlight=False)
    raise typer.Exit(exit_code)


def usage_error_message(exc: UsageError) -> str:
    """The parser's message for a mistyped command line (unknown option, missing argument, bad value), as
    one clause that points at the command's --help."""
    possibilities = getattr(exc, "possibilities", None)  # an unknown option close to known ones
    if possibilities:
        message = f"no such option: {exc.option_name} (did you mean {' or '.join(sorted(possibilities))}?)"
    else:
        message = exc.format_message().strip().removesuffix(".")
        message = message[:1].lower() + message[1:]
        head, said, suggestions = message.partition(". Did you mean ")  # Typer's unknown-command hint
        if said:
            message = f"{head} (did you mean {suggestions})"
    return message if exc.ctx is None else f"{message}; see `{exc.ctx.command_path} --help`"


@contextmanager
def usage_errors() -> Iterator[None]:
    """Turn a usage error into one line (exit code 2) instead of Typer's boxed panel."""
    try:
        yield
    except UsageError as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # plain `winnow`: Typer prints the help
            raise
        fail(usage_error_message(exc), exc.exit_code)


@contextmanager
def errors() -> Iterator[None]:
    """Turn expected errors into `fail` (one line, exit code 1) and Ctrl-C into "interrupted" (130)."""
    try:
        yield
    except KeyboardInterrupt:
        err_console.print("interrupted", highlight=False)
        raise typer.Exit(INTERRUPTED_EXIT_CODE) from None
    except BrokenPipeError:
        raise  # `winnow search ... | head` closed stdout: Typer ends quietly
    except EXPECTED_ERRORS as exc:
        fail(str(exc) or type(exc).__name__)


class WinnowGroup(TyperGroup):
    """The `winnow` command group: parses and runs every subcommand inside `usage_errors()` and
    `errors()`."""

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        with usage_errors():  # an unknown option of `winnow` itself
            return super().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        with usage_errors(), errors():
            return super().invoke(ctx)


def build_reranker(
    model: str | None, cascade: str | None = None, keep: int = DEFAULT_CASCADE_KEEP, **options: Any
) -> Reranker | Cascade:
    """The reranker a command asked for: ``model`` (default: Winnow's), behind the small ``cascade`` model
    when given; ``options`` (backend, max_length, windows) go to every model it loads."""
    from winnow.rerank import DEFAULT_RERANKER, Cascade, Reranker

    final = DEFAULT_RERANKER if model is None else model  # an empty --model fails, it is not the default
    if cascade:
        return Cascade(cascade, final, keep=keep, **options)
    return Reranker(final, **options)


@contextmanager
def open_stage1(index_dir: Path, store: str | None = None) -> Iterator[Any]:
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


def snippet(text: str, width: int = 90) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    flat = " ".join(text.split())
    return flat[:width] + ("…" if len(flat) > width else "")


def short_source(source: str) -> str:
    """A source path cut from the left to 40 characters: the file name is the telling end."""
    return source if len(source) <= 40 else "…" + source[-39:]
