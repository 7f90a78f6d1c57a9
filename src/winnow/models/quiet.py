"""Loading a Hugging Face model without its progress bar and load report.

transformers prints a "Loading weights" bar and a report of missing or unexpected keys on every
``from_pretrained``: noise in the middle of `winnow demo` or a search, and nothing a user can act on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_loading() -> Iterator[None]:
    """transformers' verbosity at errors and its progress bars off for the block, then as they were."""
    from transformers.utils import logging as hf_logging

    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
