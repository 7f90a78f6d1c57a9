"""Limits and bad input against a live server: every answer is JSON with the right status, never 5xx
for a client's mistake; overload gets 429 at once, a late request 503 with its work dropped (queued
pairs never reach the model, a request already in it runs no further pass, on every route), and
shutdown lets requests in flight finish."""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from winnow.serve import ServeSettings

from .conftest import API_KEY, GatedBackend, LiveServer, start_server


@pytest.fixture(scope="module")
def gated(served_reranker) -> GatedBackend:
    return GatedBackend(served_reranker.backend)


def _start(served_reranker, gated: GatedBackend, **limits) -> LiveServer:
    reranker = copy.copy(served_reranker)
    reranker.backend = gated
    settings = ServeSettings(models=("minilm",), api_key=API_KEY, **limits)
    return start_server(settings, lambda name: reranker)


@pytest.fixture(scope="module")
def limited(served_reranker, gated: GatedBackend) -> Iterator[LiveServer]:
    live = _start(
        served_reranker,
        gated,
        max_concurrent_requests=2,
        max_client_batch_size=100,
        max_body_bytes=1024 * 1024,
        request_timeout=3,
    )
    yield live
    gated.open.set()
    live.stop()


GOOD = {"query": "what is bm25?", "documents": ["BM25 ranks passages.", "Paris is in France."]}
AUTH = {"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"}

BAD_INPUTS = [
    # (name, path, body bytes or json, headers, expected status)
    ("malformed JSON", "/v2/rerank", b'{"query": "x", "documents": [', AUTH, 422),
    ("10,000 documents", "/v2/rerank", {"query": "q", "documents": ["d"] * 10_000}, AUTH, 413),
    ("5 MB document", "/v2/rerank", {"query": "q", "documents": ["x" * 5_000_000]}, AUTH, 413),
    ("non-UTF-8 body", "/rerank", b'{"query": "\xff\xfe", "texts": ["\xc3\x28"]}', AUTH, 400),
    ("no key", "/v2/rerank", GOOD, {}, 401),
    ("wrong key", "/v2/rerank", GOOD, {"Authorization": "Bearer nope"}, 401),
    ("key without Bearer", "/v2/rerank", GOOD, {"Authorization": API_KEY}, 401),
    ("top_n 0", "/v2/rerank", {**GOOD, "top_n": 0}, AUTH, 422),
    ("top_n negative", "/v2/rerank", {**GOOD, "top_n": -3}, AUTH, 422),
    ("empty query", "/v2/rerank", {**GOOD, "query": "   "}, AUTH, 400),
    ("no documents", "/v2/rerank", {**GOOD, "documents": []}, AUTH, 400),
    ("documents not a list", "/v2/rerank", {**GOOD, "documents": 5}, AUTH, 422),
    ("query not a string", "/rerank", {"query": 12, "texts": ["a"]}, AUTH, 422),
    ("document object without text", "/v2/rerank", {**GOOD, "documents": [{"body": "x"}]}, AUTH, 422),
    ("unknown model", "/v2/rerank", {**GOOD, "model": "rerank-english-v3.0"}, AUTH, 404),
    ("unknown path", "/v3/rerank", GOOD, AUTH, 404),
    ("search without an index", "/v1/search", {"query": "x"}, AUTH, 404),
    ("a query too long for the model", "/rerank", {"query": "word " * 400, "texts": ["a"]}, AUTH, 400),
    ("max_tokens_per_doc 0", "/v2/rerank", {**GOOD, "max_tokens_per_doc": 0}, AUTH, 422),
]


@pytest.mark.parametrize(
    ("name", "path", "body", "headers", "status"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
def test_bad_input_gets_a_json_error(limited: LiveServer, name, path, body, headers, status) -> None:
    if isinstance(body, bytes):
        reply = httpx.post(limited.url + path, content=body, headers=headers, timeout=30)
    else:
        reply = httpx.post(limited.url + path, json=body, headers=headers, timeout=30)
    assert reply.status_code == status, reply.text
    payload = reply.json()
    assert payload["error"] and payload["error_type"] and "Traceback" not in reply.text
    if status == 401:
        assert reply.headers["www-authenticate"] == "Bearer"


def test_top_n_larger_than_the_list_is_clamped(limited: LiveServer) -> None:
    reply = httpx.post(limited.url + "/v2/rerank", json={**GOOD, "top_n": 10**9}, headers=AUTH, timeout=30)
    assert reply.status_code == 200 and len(reply.json()["results"]) == 2


def test_a_body_sent_byte_by_byte_times_out_with_408(limited: LiveServer) -> None:
    body = b'{"query": "slow", "documents": ["a", "b"]}'
    host, port = limited.url.removeprefix("http://").split(":")
    head = (
        f"POST /v2/rerank HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {API_KEY}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=15) as conn:
        conn.sendall(head)
        reply = b""
        for byte in body:  # one byte every 0.25 s: the whole body would take ~10 s, the limit is 3 s
            try:
                conn.sendall(bytes([byte]))
            except OSError:
                break
            conn.settimeout(0.25)
            try:
                reply = conn.recv(4096)
            except TimeoutError:
                continue
            if reply:
                break
        conn.settimeout(10)
        reply = reply or conn.recv(4096)
    assert reply.startswith(b"HTTP/1.1 408"), reply[:200]
    assert b'"error_type":"timeout"' in reply.replace(b" ", b"")
    assert time.monotonic() - started < 8


def test_over_the_concurrency_limit_gets_429_at_once(served_reranker) -> None:
    gated = GatedBackend(served_reranker.backend)
    limited = _start(served_reranker, gated, max_concurrent_requests=2, request_timeout=60)
    gated.open.clear()
    replies: list[httpx.Response] = []
    blocked = [
        threading.Thread(
            target=lambda: replies.append(
                httpx.post(limited.url + "/v2/rerank", json=GOOD, headers=AUTH, timeout=30)
            )
        )
        for _ in range(2)
    ]
    try:
        for thread in blocked:
            thread.start()
        deadline = time.monotonic() + 10
        while limited.server.admission.in_flight < 2:
            assert time.monotonic() < deadline, "the two requests were never admitted"
            time.sleep(0.01)
        started = time.monotonic()
        rejected = httpx.post(limited.url + "/v2/rerank", json=GOOD, headers=AUTH, timeout=30)
        assert rejected.status_code == 429 and rejected.headers["retry-after"] == "1"
        assert time.monotonic() - started < 1.0
        assert httpx.get(limited.url + "/health", timeout=5).status_code == 200  # probes are never limited
    finally:
        gated.open.set()
        for thread in blocked:
            thread.join(timeout=30)
        limited.stop()
    assert [r.status_code for r in replies] == [200, 200]


def test_a_request_past_its_deadline_gets_503_and_its_work_is_dropped(
    limited: LiveServer, gated: GatedBackend
) -> None:
    gated.open.clear()
    replies: dict[str, httpx.Response] = {}

    def send(name: str) -> None:
        body = {"query": f"query {name}", "documents": ["BM25 ranks passages.", "Paris is in France."]}
        replies[name] = httpx.post(limited.url + "/v2/rerank", json=body, headers=AUTH, timeout=30)

    first = threading.Thread(target=send, args=("first",))
    second = threading.Thread(target=send, args=("second",))
    try:
        calls_before = gated.calls
        first.start()
        deadline = time.monotonic() + 10
        while gated.calls == calls_before:  # the first request is in the model, which is held
            assert time.monotonic() < deadline
            time.sleep(0.01)
        second.start()  # queued behind it
        first.join(timeout=15)
        second.join(timeout=15)
    finally:
        gated.open.set()
    assert replies["first"].status_code == replies["second"].status_code == 503
    assert replies["second"].json()["error_type"] == "timeout"
    time.sleep(0.5)  # let the worker finish the batch it had started and pick up the queue
    assert gated.calls == calls_before + 1, "the timed-out queued request still reached the model"
    ok = httpx.post(limited.url + "/v2/rerank", json=GOOD, headers=AUTH, timeout=30)
    assert ok.status_code == 200


DEADLINE_S = 2.0
MANY = [f"passage {i} about handshakes, queues and timeouts. " + "more words " * 60 for i in range(40)]
# Each request needs a dozen passes or more: 40 documents (or the 25 the sample corpus recalls for the
# question), each cut to max_length 128, and a budget of 256 padded tokens holds 2 pairs a pass.
SLOW_WORK = [
    ("/v1/search", {"query": "how does a TLS handshake work?", "candidates": 40, "mode": "bm25"}),
    ("/v1/ask", {"question": "how does a TLS handshake work?", "candidates": 40, "mode": "bm25"}),
    ("/v2/rerank", {"query": "handshake timeouts", "documents": MANY}),
    ("/rerank", {"query": "handshake timeouts", "texts": MANY}),
]


@pytest.fixture(scope="module")
def slow_server(served_reranker, sample_index_dir) -> Iterator[tuple[LiveServer, GatedBackend]]:
    """Search, ask and rerank with a short deadline and small passes, behind a gate."""
    gate = GatedBackend(served_reranker.backend)
    reranker = copy.copy(served_reranker)
    reranker.backend = gate
    settings = ServeSettings(
        models=("minilm",), index=sample_index_dir, request_timeout=DEADLINE_S, max_batch_tokens=256
    )
    live = start_server(settings, lambda name: reranker)
    warm = httpx.post(live.url + "/v1/search", json={"query": "tls", "mode": "bm25"}, timeout=30)
    assert warm.status_code == 200, warm.text
    yield live, gate
    gate.open.set()
    live.stop()


def _post_in_thread(url: str, body: dict, replies: list[httpx.Response]) -> threading.Thread:
    thread = threading.Thread(target=lambda: replies.append(httpx.post(url, json=body, timeout=30)))
    thread.start()
    return thread


def _hold_the_model_with(
    live: LiveServer, gate: GatedBackend, path: str, body: dict, replies: list[httpx.Response]
) -> tuple[int, threading.Thread]:
    """Close the gate, send the request, and wait until its first pass is in the (held) model.
    Returns the passes counted before it, and the thread that gets its reply."""
    gate.open.clear()
    before = gate.calls
    thread = _post_in_thread(live.url + path, body, replies)
    deadline = time.monotonic() + 10
    while gate.calls == before:
        assert time.monotonic() < deadline, "the request never reached the model"
        time.sleep(0.01)
    return before, thread


def _assert_timed_out(reply: httpx.Response) -> None:
    assert reply.status_code == 503, reply.text
    assert reply.json()["error_type"] == "timeout" and reply.headers["retry-after"] == "1"


@pytest.mark.parametrize(("path", "body"), SLOW_WORK, ids=[path for path, _ in SLOW_WORK])
def test_a_request_timing_out_in_the_model_stops_its_remaining_passes(slow_server, path, body) -> None:
    live, gate = slow_server
    replies: list[httpx.Response] = []
    started = time.monotonic()
    try:
        before, thread = _hold_the_model_with(live, gate, path, body, replies)
        thread.join(timeout=DEADLINE_S + 10)
        waited = time.monotonic() - started
    finally:
        gate.open.set()
    _assert_timed_out(replies[0])
    assert waited < DEADLINE_S + 1.5, f"the 503 came {waited:.1f} s after the request"
    time.sleep(1.0)  # unchecked, the passes left would run now (tens of ms each)
    assert gate.calls == before + 1, f"{gate.calls - before} passes ran for a request that timed out"
    ok = httpx.post(live.url + "/v2/rerank", json=GOOD, timeout=30)
    assert ok.status_code == 200 and gate.calls == before + 2  # the model is free at once


# /v2/rerank queued: test_a_request_past_its_deadline_gets_503_and_its_work_is_dropped.
QUEUED = [case for case in SLOW_WORK if case[0] != "/v2/rerank"]


@pytest.mark.parametrize(("path", "body"), QUEUED, ids=[path for path, _ in QUEUED])
def test_a_request_timing_out_in_the_queue_never_reaches_the_model(slow_server, path, body) -> None:
    live, gate = slow_server
    replies: list[httpx.Response] = []
    try:
        before, holder = _hold_the_model_with(live, gate, "/v2/rerank", GOOD, replies)  # one pass
        queued = _post_in_thread(live.url + path, body, replies)
        holder.join(timeout=DEADLINE_S + 10)
        queued.join(timeout=DEADLINE_S + 10)
    finally:
        gate.open.set()
    for reply in replies:
        _assert_timed_out(reply)
    time.sleep(1.0)
    assert gate.calls == before + 1, f"{gate.calls - before - 1} passes ran for a request that timed out"


def test_shutdown_finishes_requests_in_flight(served_reranker) -> None:
    gate = GatedBackend(served_reranker.backend)
    live = _start(served_reranker, gate, request_timeout=20)
    gate.open.clear()
    replies: list[httpx.Response] = []
    in_flight = threading.Thread(
        target=lambda: replies.append(
            httpx.post(live.url + "/v2/rerank", json=GOOD, headers=AUTH, timeout=30)
        )
    )
    in_flight.start()
    deadline = time.monotonic() + 10
    while gate.calls == 0:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    live.server.should_exit = True
    while not live.server.admission.draining:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    # A new request now is refused: 503 if its connection got in, else the port is already closed.
    try:
        late = httpx.post(live.url + "/v2/rerank", json=GOOD, headers=AUTH, timeout=5)
        assert late.status_code == 503
    except httpx.ConnectError:
        pass
    gate.open.set()
    in_flight.join(timeout=30)
    live.thread.join(timeout=30)
    assert not live.thread.is_alive()
    assert [r.status_code for r in replies] == [200]
