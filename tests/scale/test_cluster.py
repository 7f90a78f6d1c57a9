"""Before Ray does anything: an address where no cluster answers, and Ray not installed, are one line
each (naming the fix), and nothing is written."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

WINNOW = [sys.executable, "-m", "winnow"]
# Runs the CLI with `import ray` failing, as it does where the extra is not installed.
WITHOUT_RAY = [
    sys.executable,
    "-c",
    "import sys; sys.modules['ray'] = None; from winnow.cli import main; main()",
]


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.mark.parametrize("command", ["index", "serve"])
def test_an_unreachable_ray_address_is_one_line_and_writes_nothing(command, scifact_corpus, tmp_path) -> None:
    pytest.importorskip("ray")
    address = f"127.0.0.1:{_closed_port()}"
    target = tmp_path / "index"
    args = [str(scifact_corpus), "--index", str(target)] if command == "index" else ["--port", "0"]
    result = subprocess.run(
        [*WINNOW, command, *args, "--ray", "--ray-address", address],
        capture_output=True,
        text=True,
        timeout=120,
    )
    error = _one_line_error(result)
    assert f"no Ray cluster answers at {address}" in error and "ray start --head" in error
    assert not target.exists()


@pytest.mark.parametrize("command", ["index", "serve"])
def test_without_ray_the_error_names_the_extra(command, scifact_corpus: Path, tmp_path: Path) -> None:
    target = tmp_path / "index"
    args = [str(scifact_corpus), "--index", str(target)] if command == "index" else ["--port", "0"]
    result = subprocess.run(
        [*WITHOUT_RAY, command, *args, "--ray"], capture_output=True, text=True, timeout=120
    )
    assert "pip install 'winnow[ray]'" in _one_line_error(result)
    assert not target.exists()
