"""What every `winnow` command shares: the consoles it prints on, and how predictable failures end.

A predictable failure (a missing or damaged file, an unknown model, an empty input, Ctrl-C) ends with
one line on stderr and a non-zero exit code, never a traceback. The `WinnowGroup` applies this to every
command registered on the app, so a new command gets it without doing anything.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from winnow.errors import WinnowError

console = Console()
err_console = Console(stderr=True)

# OSError covers missing files, folders given as files and permissions; ValueError covers bad JSON,
# non-UTF-8 bytes and bad settings; TypeError a document of the wrong shape.
EXPECTED_ERRORS = (WinnowError, OSError, ValueError, TypeError)
INTERRUPTED_EXIT_CODE = 130  # what shells report for a process ended by SIGINT


def fail(message: str, exit_code: int = 1) -> NoReturn:
    """Print ``message`` as one red line on stderr and end the command with ``exit_code``."""
    one_line = " ".join(str(message).split())
    err_console.print(f"[red]error:[/red] {escape(one_line)}", soft_wrap=True, highlight=False)
    raise typer.Exit(exit_code)


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
    """The `winnow` command group: runs every subcommand inside `errors()`."""

    def invoke(self, ctx: Any) -> Any:
        with errors():
            return super().invoke(ctx)
