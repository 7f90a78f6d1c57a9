"""What a hosted rerank API does behind the ``Reranker`` API (``HostedAPI``, which
``winnow.rerank.reranker.HostedReranker`` mixes into ``Reranker``), plus what every provider shares:
batching within the API's limits, retries with backoff on 429 / 5xx, and a count of the units billed.

Scores: each API returns a ``relevance_score`` in [0, 1] per document. A ``RerankResult``'s ``score``
and ``probability`` are both that number (or ``probability`` is the given calibrator's output). It
ranks; it is not a calibrated probability (Cohere: a 0.9 is not twice as relevant as a 0.45), so
thresholds tuned on a local model's probabilities do not carry over.
"""

from __future__ import annotations

import email.utils
import importlib
import logging
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from winnow.errors import WinnowError
from winnow.extras import require_extra
from winnow.rerank.cache import CachedScore, ScoreCache
from winnow.rerank.calibration import Calibrator
from winnow.rerank.hosted import PROVIDERS, hosted_provider
from winnow.rerank.inputs import check_query, document_texts

logger = logging.getLogger("winnow.hosted")

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Options of a local cross-encoder, with their defaults: a hosted reranker accepts them only unchanged,
# so `winnow rerank --model cohere:...` works and a forced local setting is an error, not ignored.
LOCAL_OPTIONS: dict[str, Any] = {
    "revision": None,
    "backend": "auto",
    "device": None,
    "dtype": None,
    "max_length": 512,
    "batch_tokens": None,
    "windows": False,
    "window_overlap": 64,
    "max_windows": 32,
    "window_aggregate": "max",
}


class HostedAPIError(WinnowError):
    """A hosted rerank API refused the request, or kept failing after every retry."""


class TransientAPIError(Exception):
    """A failure worth retrying (rate limit, server error, timeout); internal to the retry loop."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


@dataclass
class BatchResult:
    scores: list[float]  # one per document of the batch, in the batch's order
    units: float  # what the provider billed for the request (search units or tokens)


class ProviderClient(Protocol):
    """One provider's API: how to split a request within its limits and how to send one batch."""

    unit: str
    base_url: str

    def batches(self, query: str, texts: list[str]) -> list[list[int]]: ...

    def rerank(self, query: str, texts: list[str]) -> BatchResult: ...


@dataclass
class HostedUsage:
    """What this reranker has spent: requests sent, retries, documents scored, units billed."""

    provider: str
    model: str
    unit: str
    requests: int = 0
    retries: int = 0
    documents: int = 0
    units: float = 0.0

    def __str__(self) -> str:
        return (
            f"{self.provider}:{self.model}: {self.requests} requests ({self.retries} retried), "
            f"{self.documents} documents, {self.units:g} {self.unit}"
        )


def require(module: str, extra: str) -> Any:
    """Import a provider's SDK, or fail with one line naming the extra that installs it."""
    with require_extra(module, extra):
        return importlib.import_module(module)


def api_key(given: str | None, variables: Sequence[str], provider: str) -> str:
    """The key passed in, else the first environment variable set; a clear error when there is none."""
    key = given or next((os.environ[name] for name in variables if os.environ.get(name)), None)
    if not key:
        raise HostedAPIError(
            f"no API key for {provider}: set {variables[0]} (or pass api_key=... to Reranker)"
        )
    return key


def endpoint(given: str | None, variable: str, default: str) -> str:
    """The API's base URL: the argument, else the environment variable, else the provider's own."""
    return (given or os.environ.get(variable) or default).rstrip("/")


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """Seconds a Retry-After header asks for (a number or an HTTP date), or None."""
    if not headers:
        return None
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        return max(0.0, email.utils.mktime_tz(parsed) - time.time()) if parsed else None


def raise_for_status(
    provider: str, status: int | None, headers: Mapping[str, str] | None, detail: Any
) -> None:
    """Turn an HTTP failure into a retry (429, 408, 5xx) or a one-line HostedAPIError (anything else)."""
    text = " ".join(str(detail).split())[:300]
    if status is None or status in RETRY_STATUSES or status >= 500:
        raise TransientAPIError(f"HTTP {status}: {text}", retry_after_seconds(headers))
    hint = " (check the API key)" if status in (401, 403) else ""
    raise HostedAPIError(f"{provider} answered HTTP {status}{hint}: {text}")


def split_batches(
    texts: list[str],
    max_documents: int,
    max_tokens: int | None = None,
    tokens: Callable[[str], int] | None = None,
) -> list[list[int]]:
    """Consecutive index batches of at most ``max_documents``, and ``max_tokens`` by ``tokens(text)``
    when given (a document over the budget alone still goes, alone)."""
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, text in enumerate(texts):
        cost = tokens(text) if tokens else 0
        full = len(current) >= max_documents or (max_tokens is not None and used + cost > max_tokens)
        if current and full:
            batches.append(current)
            current, used = [], 0
        current.append(index)
        used += cost
    if current:
        batches.append(current)
    return batches


def scores_by_index(provider: str, results: Sequence[tuple[int, float]], count: int) -> list[float]:
    """The API's (index, relevance_score) pairs as one score per document, checking none is missing."""
    scores: list[float | None] = [None] * count
    for index, score in results:
        if not 0 <= index < count:
            raise HostedAPIError(f"{provider} returned a result for document {index} of {count}")
        scores[index] = float(score)
    missing = [i for i, score in enumerate(scores) if score is None]
    if missing:
        raise HostedAPIError(f"{provider} returned no score for {len(missing)} of {count} documents")
    return scores  # type: ignore[return-value]


class HostedAPI:
    """A hosted rerank API in place of a local model; ``Reranker("cohere:rerank-v3.5")`` builds one
    (a ``HostedReranker``: this, then ``Reranker``'s ``rerank`` / ``arerank`` / results / cache).

    The key comes from ``api_key`` or the provider's variable (CO_API_KEY, VOYAGE_API_KEY, JINA_API_KEY);
    ``base_url`` (or CO_API_URL, VOYAGE_BASE_URL, JINA_BASE_URL) points at another host. Requests are
    split within the API's documented limits, and a 429, 408 or 5xx answer (or a timeout) is retried up
    to ``max_retries`` times, waiting what Retry-After asks or ``retry_delay`` doubling each time (with
    jitter, at most ``max_delay``). ``usage`` counts requests, retries, documents and billed units.
    Repeated (query, document) pairs come from the score cache and are not billed twice.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 5,
        retry_delay: float = 1.0,
        max_delay: float = 60.0,
        cache: ScoreCache | int | None = 20_000,
        calibrator: Calibrator | None = None,
        **local_options: Any,
    ) -> None:
        provider = hosted_provider(model)
        if provider is None:
            raise ValueError(f"{model!r} is not a hosted model (use cohere:, voyage: or jina:<model>)")
        for name, value in local_options.items():
            if name not in LOCAL_OPTIONS:
                raise TypeError(f"Reranker() got an unexpected keyword argument {name!r}")
            if value != LOCAL_OPTIONS[name]:
                raise ValueError(
                    f"{name}={value!r} applies to local cross-encoders; {model} is a hosted API "
                    "that applies its own limits"
                )
        if max_retries < 0 or retry_delay < 0:
            raise ValueError("max_retries and retry_delay must not be negative")
        self.provider = provider
        self.api_model = model.partition(":")[2]
        self.model_name = f"{provider}:{self.api_model}"
        module, extra = PROVIDERS[provider]
        client_class = importlib.import_module(module).Client
        self.client: ProviderClient = client_class(self.api_model, api_key, base_url, timeout, extra)
        self.max_retries = max_retries
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        self.usage = HostedUsage(provider, self.api_model, self.client.unit)
        self.backend_name, self.device, self.dtype = "hosted", "api", "api"
        self.tokenizer = None  # context budgets fall back to Winnow's default tokenizer
        self.max_length = None  # the API applies its own limit and reports no truncation
        self.windows = False
        self.cache = cache if isinstance(cache, ScoreCache) else ScoreCache(cache or 0)
        self.calibrator = calibrator
        self.cache_model_key = f"hosted|{self.model_name}|{self.client.base_url}"

    def __repr__(self) -> str:
        return f"Reranker(model={self.model_name!r}, hosted at {self.client.base_url})"

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """The API's relevance scores of (query, document) pairs, in input order; no cache, no sorting."""
        if isinstance(pairs, str) or not isinstance(pairs, Sequence):
            raise TypeError(f"pairs must be a list of (query, document) tuples, not {type(pairs).__name__}")
        for index, pair in enumerate(pairs):
            if not isinstance(pair, tuple | list) or len(pair) != 2:
                raise TypeError(f"pair {index} must be a (query, document) tuple, not {pair!r:.80}")
            check_query(pair[0])
        texts = document_texts([pair[1] for pair in pairs])
        scores = np.zeros(len(pairs), dtype=np.float32)
        by_query: dict[str, list[int]] = {}
        for index, pair in enumerate(pairs):
            by_query.setdefault(pair[0], []).append(index)
        for query, indices in by_query.items():
            scores[indices] = self._api_scores(query, [texts[i] for i in indices])
        return scores

    def _scores(self, query: str, texts: list[str]) -> tuple[list[CachedScore], int]:
        keys = [ScoreCache.key(self.cache_model_key, query, text) for text in texts]
        scored = [self.cache.get(key) for key in keys]
        missing = [i for i, entry in enumerate(scored) if entry is None]
        unique = list(dict.fromkeys(texts[i] for i in missing))
        if unique:
            fresh = dict(zip(unique, self._api_scores(query, unique), strict=True))
            for i in missing:
                entry = CachedScore(fresh[texts[i]], fresh[texts[i]], False, None)
                self.cache.put(keys[i], entry)
                scored[i] = entry
        return scored, len(texts) - len(missing)  # type: ignore[return-value]

    def _api_scores(self, query: str, texts: list[str]) -> list[float]:
        """One score per text, from as many requests as the API's limits need."""
        scores = [0.0] * len(texts)
        for batch in self.client.batches(query, texts):
            result = self._send(query, [texts[i] for i in batch])
            for position, score in zip(batch, result.scores, strict=True):
                scores[position] = score
            self.usage.documents += len(batch)
            self.usage.units += result.units
        return scores

    def _send(self, query: str, texts: list[str]) -> BatchResult:
        """One request, retried with backoff while the API answers 429 / 408 / 5xx or times out."""
        for attempt in range(self.max_retries + 1):
            self.usage.requests += 1
            try:
                return self.client.rerank(query, texts)
            except TransientAPIError as exc:
                if attempt == self.max_retries:
                    raise HostedAPIError(
                        f"{self.model_name} failed {attempt + 1} times, the last with {exc}; "
                        "try again later or raise max_retries"
                    ) from None
                backoff = self.retry_delay * 2**attempt * random.uniform(0.5, 1.0)
                delay = min(self.max_delay, exc.retry_after if exc.retry_after is not None else backoff)
                logger.info("%s: %s; retrying in %.2f s", self.model_name, exc, delay)
                self.usage.retries += 1
                time.sleep(delay)
        raise AssertionError("unreachable")
