"""How an index is written: one writer at a time, and how much work may sit uncommitted.

The writer lock is an OS lock (``flock``) on ``<index>/write.lock``. The kernel releases it when the
process holding it exits or is killed, so a crashed ``winnow index`` never leaves the index stuck; the
file itself (which only names the last holder, for messages) means nothing while nobody holds it.
Imports nothing heavy, so the command line can read the defaults without loading the index code.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from winnow.errors import WinnowError

# `add` commits whichever comes first. 30 s bounds what a kill can lose. The chunks read before embedding
# starts are sorted by length into batches, and 256 (the documents of the old fixed batches) keeps the
# batches, and so the vectors, of whole-document indexes exactly as they were.
COMMIT_EVERY_SECONDS = 30.0
COMMIT_EVERY_CHUNKS = 256
LOCK_NAME = "write.lock"


class IndexBusyError(WinnowError):
    """Another process is writing to the index, and the caller asked not to wait."""


class WriteLock:
    """The exclusive writer lock of one index folder (held by at most one open ``WriteLock`` anywhere)."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(
        self, purpose: str, wait: bool = True, on_wait: Callable[[str], object] | None = None
    ) -> None:
        """Take the lock; with ``wait`` block until the holder finishes (telling ``on_wait`` once).

        Raises IndexBusyError without ``wait`` when another process holds it.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_flock(fd, fcntl.LOCK_EX):
                holder = self._holder(fd)
                if not wait:
                    raise IndexBusyError(
                        f"another process ({holder}) is writing to the index at {self.folder}; "
                        "run this again when it has finished"
                    )
                if on_wait is not None:
                    on_wait(f"waiting for another process ({holder}) to finish writing to {self.folder}")
                fcntl.flock(fd, fcntl.LOCK_EX)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}, {purpose}".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def try_acquire(self, purpose: str) -> bool:
        """Take the lock if nobody holds it; False (and nothing held) if someone does or it cannot be
        created (a read-only index folder)."""
        try:
            self.acquire(purpose, wait=False)
        except (IndexBusyError, OSError):
            return False
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def held_elsewhere(self) -> bool:
        """Whether some other open lock (another process, or another Index in this one) holds it now."""
        if self._fd is not None:
            return False
        if not self.path.is_file():
            return False
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return not _try_flock(fd, fcntl.LOCK_SH)
        finally:
            os.close(fd)  # also drops the shared lock if it was taken

    @staticmethod
    def _holder(fd: int) -> str:
        text = os.pread(fd, 200, 0).decode(errors="replace").strip()
        return text or "unknown process"


def _try_flock(fd: int, kind: int) -> bool:
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True
