"""A real fault for the Ray tests: an embedding actor's process killed by SIGKILL on its first batch.

Installed in every worker of the test's Ray job (``worker_process_setup_hook``); it does nothing until
the test creates the flag file. Then the first ``Embedder.encode`` anywhere claims the file (a rename:
exactly one process wins) and kills its own process, the way the OOM killer or a lost node would.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path


def kill_first_encoder(flag: Path) -> Callable[[], None]:
    """The setup hook: patch ``Embedder.encode`` in this worker to die once ``flag`` exists."""

    def install() -> None:
        from winnow.retrieve import dense

        encode = dense.Embedder.encode

        def encode_or_die(self, texts, progress=False):
            try:
                os.rename(flag, flag.with_suffix(".claimed"))
            except FileNotFoundError:
                return encode(self, texts, progress)
            os.kill(os.getpid(), signal.SIGKILL)
            raise AssertionError("unreachable: the process was killed")

        dense.Embedder.encode = encode_or_die

    return install


def arm(flag: Path) -> None:
    flag.write_text("kill the first embedding actor that gets a batch\n")


def fired(flag: Path) -> bool:
    return flag.with_suffix(".claimed").exists()
