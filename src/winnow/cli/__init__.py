"""The `winnow` command line. Each subcommand lives in its own module; `cli/app.py` lists them."""

from __future__ import annotations

from winnow.cli.app import app


def main() -> None:
    """Entry point of the `winnow` console script."""
    app()
