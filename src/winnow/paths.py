"""Where Winnow keeps what it can rebuild: one cache root, moved as a whole by $WINNOW_CACHE_DIR."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """$WINNOW_CACHE_DIR, else ~/.cache/winnow. ONNX exports, evaluation indexes and scores and
    calibrators of installed models live in folders under it (onnx/, eval/, calibration/)."""
    override = os.environ.get("WINNOW_CACHE_DIR")
    return Path(override).expanduser() if override else Path.home() / ".cache" / "winnow"
