"""A live `winnow serve` on loopback for the service tests: real uvicorn, real model, a free port."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from winnow.rerank import Reranker
from winnow.serve import ServeSettings, make_server
from winnow.serve.server import DrainingServer

API_KEY = "test-key-123"
START_TIMEOUT_S = 60


@dataclass
class LiveServer:
    url: str
    server: DrainingServer
    thread: threading.Thread
    settings: ServeSettings

    def headers(self) -> dict[str, str]:
        key = self.settings.api_key
        return {"Authorization": f"Bearer {key}"} if key else {}

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "the server did not stop within 30 s"


def start_server(settings: ServeSettings, loader: Callable[[str], Any]) -> LiveServer:
    """Start uvicorn in a thread on 127.0.0.1 (port 0: the OS picks a free one) and wait for /health."""
    settings = replace(settings, host="127.0.0.1", port=0)
    server = make_server(settings, loader, log_level="warning")
    thread = threading.Thread(target=server.run, name="winnow-serve-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        assert thread.is_alive(), "the server thread died during start-up"
        assert time.monotonic() < deadline, "the server did not start in time"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    live = LiveServer(f"http://127.0.0.1:{port}", server, thread, replace(settings, port=port))
    while httpx.get(f"{live.url}/health", timeout=5).status_code != 200:
        assert time.monotonic() < deadline, "the model did not load in time"
        time.sleep(0.05)
    return live


@pytest.fixture(scope="session")
def served_reranker(minilm_cross_encoder: Path) -> Reranker:
    """The reranker the service runs, shared with the in-process reference (no score cache, so both
    sides really run the model)."""
    return Reranker(minilm_cross_encoder, backend="torch", dtype="fp32", cache=0, max_length=128)


@pytest.fixture(scope="module")
def live_server(served_reranker: Reranker, minilm_cross_encoder: Path) -> Iterator[LiveServer]:
    """A rerank-only service with an API key and small limits, shared by a module's tests."""
    settings = ServeSettings(
        models=(str(minilm_cross_encoder),),
        api_key=API_KEY,
        max_client_batch_size=1000,
        max_body_bytes=2 * 1024 * 1024,
        request_timeout=20,
    )
    live = start_server(settings, lambda name: served_reranker)
    yield live
    live.stop()


# A query and passages whose ranking means something, for the rerank tests.
QUERY = "how does BM25 saturate term frequency?"
DOCUMENTS = [
    "Paris is the capital and largest city of France.",
    "BM25 saturates term frequency with the k1 parameter, so repeated terms add less and less.",
    "Reciprocal rank fusion merges ranked lists by summing one over rank plus a constant.",
    "The k1 parameter in Okapi BM25 controls how quickly term frequency saturates.",
    "Dense retrieval embeds queries and passages in one vector space.",
    "Bananas are rich in potassium.",
]


GATE_TIMEOUT_S = 30


class GatedBackend:
    """The real backend behind a gate the test opens and closes, so "the model is busy" is
    deterministic; it counts the forward passes (``calls``) and pairs (``rows``) that really ran."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.num_labels = backend.num_labels
        self.open = threading.Event()
        self.open.set()
        self.calls = 0
        self.rows = 0

    def __call__(self, inputs):
        self.calls += 1
        self.rows += len(inputs["input_ids"])
        assert self.open.wait(GATE_TIMEOUT_S), "the test never opened the gate"
        return self.backend(inputs)


SAMPLE = Path(__file__).resolve().parents[2] / "src" / "winnow" / "data" / "sample_corpus"


@pytest.fixture(scope="session")
def sample_index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real on-disk index of the sample corpus shipped in the package (closed: the service opens it)."""
    from winnow.retrieve import Index
    from winnow.retrieve.ingest import iter_documents

    folder = tmp_path_factory.mktemp("serve-index") / "index"
    with Index.create(folder, chunk_tokens=None) as index:
        index.add(iter_documents([SAMPLE]), progress=False)
    return folder


@pytest.fixture(scope="module")
def search_server(served_reranker: Reranker, sample_index_dir: Path) -> Iterator[LiveServer]:
    """A service with an index (search and ask) and no API key."""
    settings = ServeSettings(models=("minilm",), index=sample_index_dir, max_client_batch_size=200)
    live = start_server(settings, lambda name: served_reranker)
    yield live
    live.stop()
