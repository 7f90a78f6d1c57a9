"""Optional integrations are extras: a missing one is a one-line error naming what to install."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from winnow.errors import WinnowError


class MissingExtraError(WinnowError, ImportError):
    """An optional integration was used without the package it needs."""


@contextmanager
def require_extra(package: str, extra: str) -> Iterator[None]:
    """Wrap an integration's imports: a missing ``package`` says ``pip install 'winnow[extra]'``."""
    try:
        yield
    except ImportError as exc:
        raise MissingExtraError(
            f"this needs the {package} package ({exc.name or exc}): pip install 'winnow[{extra}]'"
        ) from exc
