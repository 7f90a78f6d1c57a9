"""Connecting to Ray: the cluster at an address, or one on this machine, checked before anything is written.

Why probe the address first: ``ray.init`` on an address where no cluster answers keeps retrying for a
quarter of an hour (20 attempts of about 40 s); a plain TCP connect says "nothing there" in seconds, so
a mistyped ``--ray-address`` is one line and the command stops before it opens or creates an index.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from winnow.errors import WinnowError
from winnow.extras import require_extra

with require_extra("ray", "ray"):
    import ray

PROBE_TIMEOUT_S = 5.0
DEFAULT_PORT = 6379  # what `ray start --head` listens on
# Addresses ray.init resolves itself (a cluster started on this machine by `ray start`).
LOCAL_ALIASES = ("auto", "local")


class RayUnavailableError(WinnowError):
    """No Ray cluster answers at the address given."""


def host_and_port(address: str) -> tuple[str, int]:
    """``HOST[:PORT]`` or ``ray://HOST[:PORT]`` as (host, port); the port defaults to Ray's 6379."""
    bare = address.split("://", 1)[-1].rstrip("/")
    host, sep, port = bare.rpartition(":")
    if not sep:
        return bare, DEFAULT_PORT
    if not port.isdigit():
        raise RayUnavailableError(f"--ray-address {address!r} must look like HOST:PORT, e.g. 10.0.0.5:6379")
    return host.strip("[]"), int(port)


def probe(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Raise RayUnavailableError unless something accepts TCP connections at ``address``."""
    host, port = host_and_port(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return
    except OSError as exc:
        reason = exc.strerror or str(exc) or type(exc).__name__
    raise RayUnavailableError(
        f"no Ray cluster answers at {address} ({reason}); start one there with `ray start --head`, "
        "or leave out --ray-address to run Ray on this machine"
    )


@contextmanager
def ray_cluster(address: str | None = None, num_cpus: int | None = None) -> Iterator[None]:
    """Ray for the duration of the block.

    Already initialised (a caller's own ``ray.init``): used as it is. Else connect to ``address`` (or
    ``$RAY_ADDRESS``), or start Ray on this machine with ``num_cpus`` (default: all); shut down on exit
    what was connected or started here.
    """
    if ray.is_initialized():
        yield
        return
    target = address or os.environ.get("RAY_ADDRESS") or None
    if target is not None and target not in LOCAL_ALIASES:
        probe(target)
    # Workers' output (model loading bars, replica access logs) stays in Ray's log files
    # (/tmp/ray/session_latest/logs): a failure still reaches this process as an exception.
    options: dict = {"logging_level": logging.WARNING, "log_to_driver": False}
    if target is None:  # a cluster of our own: no dashboard (nobody would look at it), our CPU count
        options.update(include_dashboard=False, num_cpus=num_cpus)
    try:
        ray.init(address=target, **options)
    except ConnectionError as exc:
        raise RayUnavailableError(f"could not join the Ray cluster at {target}: {exc}") from exc
    # Ray Data's and Ray Serve's notices would interleave with the command's own progress and start-up lines.
    for name in ("ray.data", "ray.serve"):
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        yield
    finally:
        ray.shutdown()
