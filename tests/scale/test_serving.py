"""`winnow serve --ray` on a local Ray: the service's own API tests (Cohere's SDK, LlamaIndex's TEI
postprocessor, search and ask) run unchanged against it, concurrent requests get their own answers while
@serve.batch packs them, and SIGTERM ends it cleanly."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from serve.conftest import API_KEY
from serve.test_serve_rerank import (  # noqa: F401  (the plain service's tests, run here against Ray)
    send_concurrent_requests,
    test_cohere_sdk_gets_the_in_process_order,
    test_cohere_sdk_sees_unknown_model_as_404,
    test_cohere_sdk_with_a_wrong_key_is_unauthorized,
    test_llamaindex_tei_postprocessor_gets_the_in_process_order,
    test_max_tokens_per_doc_cuts_and_reports,
    test_tei_options_raw_scores_text_and_left_truncation,
    test_v1_and_dict_documents_with_return_documents,
)
from serve.test_serve_search import (  # noqa: F401
    test_ask_answers_with_citations,
    test_ask_streams_server_sent_events,
    test_search_abstains_below_min_confidence,
    test_search_matches_the_pipeline_in_process,
    test_search_with_a_bad_filter_is_400,
)

from winnow.serve import ServeSettings

pytest.importorskip("ray")

WINNOW = [sys.executable, "-m", "winnow"]
START_TIMEOUT_S = 300
REPLICAS = 2


@dataclass
class RayService:
    """A `winnow serve --ray` process, shaped like tests/serve's LiveServer for the tests reused here."""

    url: str
    settings: ServeSettings
    process: subprocess.Popen
    startup: str

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.settings.api_key}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ray_service(ray_address: str, minilm_cross_encoder: Path, sample_index_dir: Path) -> Iterator[RayService]:
    """The service as a user starts it, joined to the test's Ray: 2 reranker replicas, an index, a key.
    Its model settings match tests/serve's ``served_reranker`` (torch, fp32, max_length 128)."""
    port = _free_port()
    settings = ServeSettings(
        models=(str(minilm_cross_encoder),),
        index=sample_index_dir,
        port=port,
        api_key=API_KEY,
        max_length=128,
    )
    command = [*WINNOW, "serve", "--ray", "--ray-address", ray_address, "--model", str(minilm_cross_encoder)]
    command += [
        "--index",
        str(sample_index_dir),
        "--port",
        str(port),
        "--backend",
        "torch",
        "--dtype",
        "fp32",
    ]
    command += ["--max-length", "128", "--replicas", str(REPLICAS), "--request-timeout", "20"]
    env = {**os.environ, "WINNOW_API_KEY": API_KEY}
    process = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stderr], daemon=True).start()
    deadline, seen = time.monotonic() + START_TIMEOUT_S, []
    while not any(line.startswith("winnow serve --ray ready") for line in seen):
        assert process.poll() is None, "winnow serve --ray exited:\n" + "".join(seen)
        assert time.monotonic() < deadline, "winnow serve --ray did not start in time:\n" + "".join(seen)
        try:
            seen.append(lines.get(timeout=1))
        except queue.Empty:
            pass
    service = RayService(f"http://127.0.0.1:{port}", settings, process, seen[-1])
    yield service
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 0


@pytest.fixture(scope="module")
def live_server(ray_service: RayService) -> RayService:
    return ray_service


@pytest.fixture(scope="module")
def search_server(ray_service: RayService) -> RayService:
    return ray_service


def test_startup_line_names_the_replicas_and_batching(ray_service: RayService) -> None:
    line = ray_service.startup
    assert f"{REPLICAS} replicas" in line and "@serve.batch max_batch_size 8" in line
    assert "torch, fp32" in line and "max_length 128" in line and f":{ray_service.settings.port}" in line


def test_concurrent_requests_get_their_own_answers_in_shared_batches(ray_service, served_reranker) -> None:
    """16 requests at once, each with its own query and order, get their own in-process ranking; both
    replicas served, and @serve.batch put more than one request into a forward pass."""
    from ray import serve

    from winnow.scale.serving import APP_NAME, reranker_deployment

    send_concurrent_requests(ray_service, served_reranker)

    handle = serve.get_deployment_handle(reranker_deployment(0), APP_NAME)
    replicas: dict[str, dict] = {}
    for _ in range(40):  # the handle picks a replica per call: ask until both have answered
        stats = handle.batching.remote().result()
        replicas[stats["replica"]] = stats
        if len(replicas) == REPLICAS:
            break
    assert len(replicas) == REPLICAS
    assert all(s["batches"] >= 1 for s in replicas.values()), replicas
    assert max(s["largest"] for s in replicas.values()) >= 2, "no batch held more than one request"


def test_health_needs_no_key_and_metrics_count_requests(ray_service: RayService) -> None:
    health = httpx.get(f"{ray_service.url}/health", timeout=10)
    assert health.status_code == 200 and health.json()["status"] == "ok" and health.json()["index"] is True
    assert httpx.get(f"{ray_service.url}/metrics", timeout=10).status_code == 401
    metrics = httpx.get(f"{ray_service.url}/metrics", headers=ray_service.headers(), timeout=10).text
    assert 'winnow_requests_total{route="/v2/rerank",status="200"}' in metrics


def test_bad_input_is_a_json_error_not_a_500(ray_service: RayService) -> None:
    long_query = "word " * 400  # longer than max_length 128: the replica's ValueError, answered as 400
    cases = [
        ({"query": "q", "documents": []}, 400),
        ({"query": long_query, "documents": ["a passage"]}, 400),
        ({"query": "q"}, 422),
    ]
    for body, status in cases:
        reply = httpx.post(
            f"{ray_service.url}/v2/rerank", json=body, headers=ray_service.headers(), timeout=30
        )
        assert reply.status_code == status, reply.text
        assert reply.json()["error"] and "Traceback" not in reply.text


def test_scaling_options_become_ray_serve_options() -> None:
    from winnow.scale.serving import Scaling

    fixed = Scaling(replicas=3, cpus_per_replica=2).deployment_options()
    assert fixed["num_replicas"] == 3 and fixed["ray_actor_options"]["num_cpus"] == 2
    assert "autoscaling_config" not in fixed
    auto = Scaling(min_replicas=0, max_replicas=4).deployment_options()["autoscaling_config"]
    assert (auto["min_replicas"], auto["initial_replicas"], auto["max_replicas"]) == (0, 1, 4)
    assert Scaling(min_replicas=2).describe() == "autoscaling 2-2 replicas"
    with pytest.raises(ValueError, match="min-replicas <= max-replicas"):
        Scaling(min_replicas=5, max_replicas=2)
