"""Prometheus metrics of the service: requests, latency per stage, batch sizes, queue depth, rejects,
cache hits.

Each app gets its own registry, so several services (or tests) in one process never share counters.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
TOKEN_BUCKETS = (128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)


class ServeMetrics:
    """The service's metrics, registered on a fresh registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "winnow_requests",
            "HTTP requests answered, by route and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "winnow_request_duration_seconds",
            "Time from a request's arrival to its response, by route.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "winnow_stage_duration_seconds",
            "Time spent per stage: tokenize, queue (waiting for the model), inference, stage1, rerank.",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_pairs = Histogram(
            "winnow_batch_pairs",
            "Query-document pairs per forward pass.",
            ["model"],
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )
        self.batch_tokens = Histogram(
            "winnow_batch_tokens",
            "Padded tokens per forward pass.",
            ["model"],
            buckets=TOKEN_BUCKETS,
            registry=self.registry,
        )
        self.batch_requests = Histogram(
            "winnow_batch_requests",
            "Requests that shared one round of the inference worker.",
            ["model"],
            buckets=SIZE_BUCKETS,
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "winnow_queue_depth",
            "Requests waiting for the inference worker.",
            ["model"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "winnow_requests_in_flight", "Requests admitted and not yet answered.", registry=self.registry
        )
        self.rejected = Counter(
            "winnow_rejected_requests",
            "Requests turned away, by reason: concurrency (429), body_size (413), timeout (503), "
            "slow_body (408), unauthorized (401), draining (503).",
            ["reason"],
            registry=self.registry,
        )
        self.cache_hits = Counter(
            "winnow_cache_hits",
            "Query-document pairs answered from the score cache, without a forward pass.",
            ["model"],
            registry=self.registry,
        )
        self.cache_misses = Counter(
            "winnow_cache_misses",
            "Query-document pairs the score cache did not hold (scored by the model).",
            ["model"],
            registry=self.registry,
        )
        self.truncated_documents = Counter(
            "winnow_truncated_documents",
            "Documents cut to fit the model's or the request's token limit.",
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
