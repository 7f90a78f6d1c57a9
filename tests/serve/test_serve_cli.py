"""`winnow serve` as a user runs it: --help, a one-line error for a missing model, and a real process
that prints its start-up line, answers, and exits cleanly on SIGTERM."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

WINNOW = [sys.executable, "-m", "winnow"]
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_help_has_an_example() -> None:
    result = subprocess.run([*WINNOW, "serve", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert "Example" in result.stdout and "--max-concurrent-requests" in result.stdout


def test_a_missing_model_is_a_one_line_error() -> None:
    result = subprocess.run(
        [*WINNOW, "serve", "--model", "/no/such/model", "--port", str(_free_port())],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "error:" in result.stderr and "Traceback" not in result.stderr


def test_serve_starts_answers_and_stops_on_sigterm(minilm_cross_encoder: Path) -> None:
    port = _free_port()
    env = {**os.environ, "WINNOW_API_KEY": "cli-key"}
    command = [
        *WINNOW,
        "serve",
        "--model",
        str(minilm_cross_encoder),
        "--port",
        str(port),
        "--backend",
        "torch",
    ]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        startup = ""
        while "ready" not in startup:
            assert time.monotonic() < deadline, "no start-up line in time"
            assert process.poll() is None, "the server exited during start-up"
            try:
                startup = lines.get(timeout=1)
            except queue.Empty:
                continue
        assert f"http://127.0.0.1:{port}" in startup and "torch" in startup and "api key required" in startup
        assert "max_concurrent_requests 64" in startup and "cache 20000 pairs" in startup

        url = f"http://127.0.0.1:{port}"
        assert httpx.get(f"{url}/health", timeout=10).status_code == 200
        reply = httpx.post(
            f"{url}/v2/rerank",
            json={"query": "what is BM25?", "documents": ["BM25 ranks passages.", "Paris is in France."]},
            headers={"Authorization": "Bearer cli-key"},
            timeout=30,
        )
        assert reply.status_code == 200 and len(reply.json()["results"]) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    # A graceful shutdown on SIGTERM is a success: status 0 (uvicorn alone would re-raise the signal).
    assert code == 0
    reader.join(timeout=10)  # the rest of stderr, up to end of file
    rest = []
    while not lines.empty():
        rest.append(lines.get())
    assert any("Application shutdown complete" in line for line in rest), rest[-5:]
    assert not any("Traceback" in line for line in rest)
