"""The chat-completions client against a real local HTTP server that speaks the OpenAI format."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from loopback import send_text

from winnow.answer.llm import ChatClient, LLMConfigError, LLMError

MESSAGES = [
    {"role": "system", "content": "Answer from the sources."},
    {"role": "user", "content": "Sources: [1] ...\nQuestion: why?"},
]
Behaviour = Callable[[BaseHTTPRequestHandler, dict], None]


def completion(text: str) -> Behaviour:
    """A well-formed non-streamed chat completion, or a streamed one when the request asks for it."""

    def reply(handler: BaseHTTPRequestHandler, body: dict) -> None:
        if body.get("stream"):
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.end_headers()
            chunks = [{"role": "assistant", "content": ""}] + [{"content": w} for w in text.split("|")]
            for delta in chunks:
                event = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta}]}
                handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
                handler.wfile.flush()
            last = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            handler.wfile.write(f": keep-alive\n\ndata: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
            return
        payload = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text.replace("|", "")},
                    "finish_reason": "stop",
                }
            ],
        }
        send_text(handler, 200, json.dumps(payload))

    return reply


def status(code: int, text: str = '{"error": {"message": "overloaded, try later"}}', **headers) -> Behaviour:
    return lambda handler, body: send_text(handler, code, text, headers)


def slow(seconds: float) -> Behaviour:
    def reply(handler: BaseHTTPRequestHandler, body: dict) -> None:
        time.sleep(seconds)
        try:
            completion("too late")(handler, body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting, as it should

    return reply


class ChatServer:
    """A local chat-completions endpoint; each request takes the next behaviour (the last one repeats)."""

    def __init__(self) -> None:
        self.behaviours: list[Behaviour] = [completion("ok")]
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                body = json.loads(self.rfile.read(length))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                behaviour = server.behaviours.pop(0) if len(server.behaviours) > 1 else server.behaviours[0]
                behaviour(self, body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self.httpd.server_port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    yield chat
    chat.close()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "WINNOW_LLM_BASE_URL",
        "WINNOW_LLM_MODEL",
        "WINNOW_LLM_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


def client(server: ChatServer, **options) -> ChatClient:
    settings = {"model": "test-model", "api_key": "sk-test", "backoff": 0.01, **options}
    return ChatClient(base_url=server.base_url, **settings)


def check_openai_format(request: dict, stream: bool) -> None:
    """The request is a documented chat-completions request: path, auth header and body fields."""
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == "Bearer sk-test"
    assert request["headers"]["Content-Type"] == "application/json"
    body = request["body"]
    assert set(body) == {"model", "messages", "stream", "temperature", "max_tokens"}
    assert body["model"] == "test-model" and body["stream"] is stream
    assert isinstance(body["temperature"], float) and 0 <= body["temperature"] <= 2
    assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
    assert body["messages"] == MESSAGES
    assert all(
        m["role"] in {"system", "user", "assistant"} and isinstance(m["content"], str) for m in MESSAGES
    )


def test_complete_sends_the_documented_body_and_reads_the_message(server: ChatServer) -> None:
    server.behaviours = [completion("BM25 ranks| by term| frequency [1].")]
    assert client(server).complete(MESSAGES) == "BM25 ranks by term frequency [1]."
    [request] = server.requests
    check_openai_format(request, stream=False)


def test_stream_yields_pieces_as_sent(server: ChatServer) -> None:
    server.behaviours = [completion("BM25 ranks| by term| frequency [1].")]
    pieces = list(client(server).stream(MESSAGES))
    assert pieces == ["BM25 ranks", " by term", " frequency [1]."]
    check_openai_format(server.requests[0], stream=True)


@pytest.mark.parametrize("streamed", [False, True])
def test_a_server_error_then_success_is_retried(server: ChatServer, streamed: bool) -> None:
    server.behaviours = [status(500), status(429, **{"Retry-After": "0"}), completion("fine")]
    chat = client(server, max_retries=2)
    assert ("".join(chat.stream(MESSAGES)) if streamed else chat.complete(MESSAGES)) == "fine"
    assert len(server.requests) == 3


def test_always_failing_gives_a_clear_error_after_bounded_retries(server: ChatServer) -> None:
    server.behaviours = [status(503)]
    with pytest.raises(LLMError, match=r"failed after 3 attempts: HTTP 503: overloaded, try later") as caught:
        client(server, max_retries=2).complete(MESSAGES)
    assert caught.value.status == 503 and caught.value.attempts == 3 and len(server.requests) == 3


def test_a_client_error_is_not_retried(server: ChatServer) -> None:
    server.behaviours = [status(401, '{"error": {"message": "Incorrect API key provided"}}')]
    with pytest.raises(LLMError, match="refused the request: HTTP 401: Incorrect API key provided"):
        list(client(server).stream(MESSAGES))
    assert len(server.requests) == 1


def test_a_slow_endpoint_times_out(server: ChatServer) -> None:
    server.behaviours = [slow(1.0)]
    start = time.perf_counter()
    with pytest.raises(LLMError, match=r"failed after 2 attempts: timed out \(ReadTimeout\)"):
        client(server, timeout=0.2, max_retries=1).complete(MESSAGES)
    assert time.perf_counter() - start < 1.5


@pytest.mark.parametrize(
    ("reply", "streamed", "message"),
    [
        ("this is not json", False, "returned invalid JSON: 'this is not json'"),
        ('{"choices": []}', False, r"without choices\[0\].message.content"),
        ("data: {broken\n\n", True, "sent an event that is not JSON: '{broken'"),
        ('data: {"choices": [{"delta": {"content": "half"}}]}\n\n', True, "stream ended before its end"),
        (
            '{"error": "model not loaded"}',
            True,
            """stream ended before its end .*it sent '{"error": "model not loaded"}'""",
        ),
    ],
)
def test_garbage_gives_a_clear_error(server: ChatServer, reply: str, streamed: bool, message: str) -> None:
    server.behaviours = [status(200, reply)]
    chat = client(server)
    with pytest.raises(LLMError, match=message):
        list(chat.stream(MESSAGES)) if streamed else chat.complete(MESSAGES)
    assert len(server.requests) == 1  # garbage is not retried: it would come back the same


def test_endpoint_down_is_a_connect_error_after_retries() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once the socket closes
    chat = ChatClient(base_url=f"http://127.0.0.1:{port}/v1", model="m", max_retries=1, backoff=0.01)
    with pytest.raises(LLMError, match="failed after 2 attempts: cannot connect"):
        chat.complete(MESSAGES)


def test_settings_come_from_arguments_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ChatClient.from_env() is None  # nothing configured: callers fall back to extractive answers
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    assert ChatClient.from_env() is None  # a key alone names no model
    monkeypatch.setenv("WINNOW_LLM_MODEL", "llama3.1")
    chat = ChatClient.from_env()
    assert chat.model == "llama3.1" and chat.url == "https://api.openai.com/v1/chat/completions"
    assert chat.api_key == "sk-openai"
    monkeypatch.setenv("OPENAI_BASE_URL", "http://openai-proxy:9000/v1/")
    monkeypatch.setenv("WINNOW_LLM_BASE_URL", "http://localhost:11434/v1")
    monkeypatch.setenv("WINNOW_LLM_API_KEY", "sk-winnow")
    chat = ChatClient.from_env(model="qwen")
    assert (chat.base_url, chat.model, chat.api_key) == ("http://localhost:11434/v1", "qwen", "sk-winnow")
    monkeypatch.delenv("WINNOW_LLM_BASE_URL")
    assert ChatClient().base_url == "http://openai-proxy:9000/v1"


def test_bad_settings_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(LLMConfigError, match="no chat model set for http://localhost:8000/v1"):
        ChatClient.from_env(base_url="http://localhost:8000/v1")
    with pytest.raises(LLMConfigError, match="must start with http"):
        ChatClient(base_url="localhost:8000", model="m")
    with pytest.raises(ValueError, match="timeout must be > 0"):
        ChatClient(base_url="http://x/v1", model="m", timeout=0)
    with pytest.raises(ValueError, match="exactly 'role' and 'content'"):
        ChatClient(base_url="http://x/v1", model="m").request_body([{"role": "user"}], stream=False)
