"""A small client for OpenAI-compatible chat-completions endpoints (OpenAI, vLLM, Ollama, llama.cpp...).

Why not the ``openai`` package: one POST is all Winnow needs, ``httpx`` is already a dependency, and
any provider that speaks the format works. The request body follows OpenAI's documented
``POST {base_url}/chat/completions`` format: ``model``, ``messages`` (``role`` / ``content``),
``stream``, ``temperature``, ``max_tokens``. Streamed replies are server-sent events, one
``data: {json}`` line per chunk with the new text in ``choices[0].delta.content``, ending with
``data: [DONE]``.

Failures that may pass (connection refused, timeouts, HTTP 408/429/5xx) are retried a bounded number
of times with exponential backoff (honouring ``Retry-After``); everything else, and the last failure,
raises ``LLMError`` with the endpoint, the attempts made and what went wrong.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import httpx

from winnow.errors import WinnowError

OPENAI_BASE_URL = "https://api.openai.com/v1"
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_S = 30.0


class LLMError(WinnowError):
    """The chat endpoint failed, timed out or answered something that is not a chat completion."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1):
        super().__init__(message)
        self.status = status
        self.attempts = attempts


class LLMConfigError(WinnowError, ValueError):
    """The chat endpoint settings are incomplete (e.g. a base URL but no model)."""


def _env(*names: str) -> str | None:
    for name in names:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


class _Retry(Exception):
    """A failure worth another attempt; carries the message and the server's Retry-After, if any."""

    def __init__(self, message: str, status: int | None = None, wait: float | None = None):
        super().__init__(message)
        self.status = status
        self.wait = wait


class ChatClient:
    """Chat completions from an OpenAI-compatible endpoint.

    >>> client = ChatClient(base_url="http://localhost:8000/v1", model="qwen2.5-7b-instruct")
    >>> client.complete([{"role": "user", "content": "Say hi"}])  # doctest: +SKIP

    Arguments left out come from the environment: ``WINNOW_LLM_BASE_URL`` (else ``OPENAI_BASE_URL``,
    else OpenAI's own URL), ``WINNOW_LLM_MODEL``, ``WINNOW_LLM_API_KEY`` (else ``OPENAI_API_KEY``).
    ``timeout`` bounds connecting and each wait for data, in seconds; ``max_retries`` is the number of
    extra attempts after a retryable failure, waiting ``backoff * 2**attempt`` seconds between them.
    """

    def __init__(
        self,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        max_retries: int = 2,
        backoff: float = 0.5,
        temperature: float = 0.0,
        max_tokens: int = 512,
    ) -> None:
        self.base_url = (
            base_url or _env("WINNOW_LLM_BASE_URL", "OPENAI_BASE_URL") or OPENAI_BASE_URL
        ).rstrip("/")
        model = model or _env("WINNOW_LLM_MODEL")
        if not model:
            raise LLMConfigError(
                f"no chat model set for {self.base_url}: pass model=... (CLI: --llm-model) "
                "or set WINNOW_LLM_MODEL"
            )
        if not self.base_url.startswith(("http://", "https://")):
            raise LLMConfigError(
                f"the chat base URL must start with http:// or https://, got {self.base_url!r}"
            )
        if timeout <= 0 or max_retries < 0 or backoff < 0:
            raise ValueError(
                f"timeout must be > 0 and max_retries, backoff >= 0 (got {timeout}, {max_retries}, {backoff})"
            )
        self.model = model
        self.api_key = api_key or _env("WINNOW_LLM_API_KEY", "OPENAI_API_KEY")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.temperature = temperature
        self.max_tokens = max_tokens

    @classmethod
    def from_env(cls, **overrides: Any) -> ChatClient | None:
        """A client when a model or base URL is configured (arguments or environment), else None.

        An API key alone does not configure one: without a model there is nothing to call.
        """
        configured = overrides.get("model") or overrides.get("base_url")
        if not (configured or _env("WINNOW_LLM_MODEL", "WINNOW_LLM_BASE_URL")):
            return None
        return cls(**overrides)

    def __repr__(self) -> str:
        return f"ChatClient(base_url={self.base_url!r}, model={self.model!r})"

    @property
    def url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def request_body(self, messages: Sequence[dict[str, str]], stream: bool) -> dict[str, Any]:
        """The JSON body of one chat-completions request."""
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or set(message) != {"role", "content"}:
                raise ValueError(
                    f"message {i} must be a dict with exactly 'role' and 'content', got {message!r:.80}"
                )
        return {
            "model": self.model,
            "messages": list(messages),
            "stream": stream,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0))

    def complete(self, messages: Sequence[dict[str, str]]) -> str:
        """The assistant's reply to ``messages``, in one piece."""
        body = self.request_body(messages, stream=False)

        def attempt(client: httpx.Client) -> str:
            response = client.post(self.url, json=body, headers=self._headers())
            self._check_status(response, response.text)
            return _message_content(response.text, self.url)

        return self._with_retries(attempt)

    def stream(self, messages: Sequence[dict[str, str]]) -> Iterator[str]:
        """The assistant's reply to ``messages`` as text pieces, as the server sends them.

        Failures before the first piece are retried; a failure after it raises ``LLMError`` (retrying
        then would repeat text the caller has already shown).
        """
        body = self.request_body(messages, stream=True)
        attempts = 0
        with httpx.Client(timeout=self._timeout()) as client:
            while True:
                attempts += 1
                started = False
                try:
                    with client.stream("POST", self.url, json=body, headers=self._headers()) as response:
                        if response.status_code >= 400:
                            self._check_status(response, response.read().decode("utf-8", "replace"))
                        for piece in _sse_pieces(response.iter_lines(), self.url):
                            started = True
                            yield piece
                    return
                except _Retry as exc:
                    self._wait_or_raise(exc, attempts)
                except httpx.TransportError as exc:
                    if started:
                        raise LLMError(
                            f"chat endpoint {self.url}: the stream broke off: {_describe(exc)}",
                            attempts=attempts,
                        ) from exc
                    self._wait_or_raise(_Retry(_describe(exc)), attempts)

    def _with_retries(self, attempt: Callable[[httpx.Client], str]) -> str:
        attempts = 0
        with httpx.Client(timeout=self._timeout()) as client:
            while True:
                attempts += 1
                try:
                    return attempt(client)
                except _Retry as exc:
                    self._wait_or_raise(exc, attempts)
                except httpx.TransportError as exc:
                    self._wait_or_raise(_Retry(_describe(exc)), attempts)

    def _wait_or_raise(self, failure: _Retry, attempts: int) -> None:
        if attempts > self.max_retries:
            raise LLMError(
                f"chat endpoint {self.url} failed after {attempts} attempt{'s' * (attempts > 1)}: {failure}",
                status=failure.status,
                attempts=attempts,
            ) from failure
        wait = self.backoff * 2 ** (attempts - 1)
        if failure.wait is not None:
            wait = max(wait, min(failure.wait, MAX_RETRY_AFTER_S))
        time.sleep(wait)

    def _check_status(self, response: httpx.Response, text: str) -> None:
        """Raise for an error status: ``_Retry`` when another attempt may pass, else ``LLMError``."""
        if response.status_code < 400:
            return
        detail = f"HTTP {response.status_code}: {_error_message(text)}"
        if response.status_code in RETRY_STATUSES:
            raise _Retry(detail, response.status_code, _retry_after(response))
        raise LLMError(f"chat endpoint {self.url} refused the request: {detail}", status=response.status_code)


def _describe(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("retry-after", ""))
    except ValueError:
        return None


def _error_message(text: str) -> str:
    """The provider's message from OpenAI's ``{"error": {"message": ...}}`` body, else the body itself."""
    try:
        error = json.loads(text).get("error")
        message = error.get("message") if isinstance(error, dict) else error
        if isinstance(message, str) and message:
            return message
    except (ValueError, AttributeError):
        pass
    return " ".join(text.split())[:300] or "(empty body)"


def _message_content(text: str, url: str) -> str:
    """``choices[0].message.content`` of a chat completion, or an ``LLMError`` saying what is wrong."""
    try:
        payload = json.loads(text)
    except ValueError:
        raise LLMError(f"chat endpoint {url} returned invalid JSON: {text[:200]!r}") from None
    try:
        content = payload["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise LLMError(
            f"chat endpoint {url} returned JSON without choices[0].message.content: {text[:200]!r}"
        ) from None
    if not isinstance(content, str):
        raise LLMError(f"chat endpoint {url} returned a non-text message content: {content!r:.200}")
    return content


def _sse_pieces(lines: Iterator[str], url: str) -> Iterator[str]:
    """Text pieces of a streamed chat completion (``data: {...}`` lines up to ``data: [DONE]``).

    A stream that stops without ``[DONE]`` is accepted only after a chunk with a ``finish_reason``;
    otherwise it was cut off and the text is incomplete.
    """
    finished = False
    ignored: list[str] = []
    for line in lines:
        if not line.startswith("data:"):
            if line.strip() and not line.startswith((":", "event:", "id:", "retry:")) and len(ignored) < 3:
                ignored.append(line)  # not server-sent events at all: kept for the error message
            continue  # blank separators, ": comments", "event:", "id:" and "retry:" fields
        data = line[5:].strip()
        if data == "[DONE]":
            return
        try:
            chunk = json.loads(data)
        except ValueError:
            raise LLMError(f"chat endpoint {url} sent an event that is not JSON: {data[:200]!r}") from None
        if isinstance(chunk, dict) and "error" in chunk:
            raise LLMError(f"chat endpoint {url} reported an error mid-stream: {_error_message(data)}")
        try:
            choices = chunk["choices"]
            delta = choices[0]["delta"] if choices else {}
        except (KeyError, IndexError, TypeError):
            raise LLMError(
                f"chat endpoint {url} sent a chunk without choices[0].delta: {data[:200]!r}"
            ) from None
        finished = finished or bool(choices and choices[0].get("finish_reason"))
        content = delta.get("content") if isinstance(delta, dict) else None
        if content:
            yield content
    if not finished:
        got = f"; it sent {' '.join(ignored)[:200]!r}" if ignored else ""
        raise LLMError(
            f"chat endpoint {url}: the stream ended before its end (no finish_reason, no [DONE]){got}"
        )
