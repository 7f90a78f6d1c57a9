"""Authority: how much a source is trusted, from glob patterns over ``source`` (default 0.5).

Documents ingested with authority rules already carry an ``authority`` weight; query-time patterns,
when one matches, override it (they are the newer, explicit setting). Otherwise the stored weight is
used, and a document with neither gets ``default``.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping
from typing import Any

DEFAULT_AUTHORITY = 0.5


def check_authority_settings(patterns: Mapping[str, float], default: float) -> None:
    for pattern, weight in {**patterns, "default": default}.items():
        if not isinstance(weight, int | float) or not 0.0 <= float(weight) <= 1.0:
            raise ValueError(f"authority weight for {pattern!r} must be a number in [0, 1], got {weight!r}")


def authority(
    source: str, stored: Any, patterns: Mapping[str, float], default: float = DEFAULT_AUTHORITY
) -> float:
    """The first pattern matching ``source`` wins; else the document's stored weight; else ``default``."""
    for pattern, weight in patterns.items():
        if fnmatch.fnmatch(source, pattern):
            return float(weight)
    if isinstance(stored, int | float) and not isinstance(stored, bool) and math.isfinite(stored):
        return min(1.0, max(0.0, float(stored)))
    return default
