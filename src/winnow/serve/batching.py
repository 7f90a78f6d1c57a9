"""Dynamic batching across requests: one inference worker per model packs the pairs of concurrent
requests into token-budget batches and hands each request back its own scores.

Why: a cross-encoder on a CPU spends a forward pass per batch; requests that arrive together share
passes instead of queueing for the model one by one, and the model never runs two passes at once
(which on a few cores only makes both slower). Packing reuses the reranker's own token-budget
batching (``winnow.models.batching``), so padding wastes as little here as in the library.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from winnow.models.batching import pad_batch, token_budget_batches
from winnow.serve.metrics import ServeMetrics

logger = logging.getLogger("winnow.serve")


class InferenceError(RuntimeError):
    """The model failed on a batch; every request in it gets this instead of scores."""


class WorkerStopped(RuntimeError):
    """The service is shutting down and takes no new work."""


@dataclass(slots=True)
class EncodedPairs:
    """One request's pairs as model inputs: one row per pair."""

    input_ids: list[list[int]]
    token_type_ids: list[list[int]] | None

    @property
    def tokens(self) -> int:
        return sum(len(ids) for ids in self.input_ids)


@dataclass(slots=True)
class _Job:
    pairs: EncodedPairs
    future: asyncio.Future[np.ndarray]
    queued_at: float = field(default_factory=time.perf_counter)
    # Set when the request stops waiting (deadline, disconnect): read by the inference thread.
    abandoned: threading.Event = field(default_factory=threading.Event)


class BatchWorker:
    """Collects (request, pairs) from a queue, waits up to ``max_wait_ms`` for company while fewer than
    ``max_batch_tokens`` tokens are waiting, packs them by token budget, runs the backend in its own
    thread and resolves each request's future with its logits (rows in the request's order).

    A request that stops waiting (cancelled: timed out or disconnected) is dropped before it reaches
    the model, and its rows still waiting in a running round are skipped: the model finishes the pass
    it is in, never the request's remaining passes.
    """

    def __init__(
        self,
        backend,
        pad_id: int,
        max_batch_tokens: int,
        max_wait_ms: float,
        metrics: ServeMetrics | None = None,
        model_name: str = "",
    ) -> None:
        self.backend = backend
        self.pad_id = pad_id
        self.max_batch_tokens = max_batch_tokens
        self.max_wait = max_wait_ms / 1000
        self.metrics = metrics
        self.model_name = model_name
        self._queue: asyncio.Queue[_Job] = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"winnow-infer-{model_name}")
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"batch-{self.model_name}")

    async def stop(self) -> None:
        """Stop taking work, fail what is still queued, and wait for the running batch to end."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if not job.future.done():
                job.future.set_exception(WorkerStopped("the service is shutting down"))
        await asyncio.to_thread(self._executor.shutdown, True)  # a running batch ends first

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    async def submit(self, pairs: EncodedPairs) -> np.ndarray:
        """Logits of ``pairs`` (rows x labels), once the worker has run them."""
        if self._stopped:
            raise WorkerStopped("the service is shutting down")
        if not pairs.input_ids:
            return np.zeros((0, self.backend.num_labels), dtype=np.float32)
        job = _Job(pairs, asyncio.get_running_loop().create_future())
        self._queue.put_nowait(job)
        self._record_depth()
        try:
            return await job.future
        except asyncio.CancelledError:
            job.abandoned.set()
            raise

    def _record_depth(self) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.labels(self.model_name).set(self._queue.qsize())

    async def _gather(self) -> list[_Job]:
        """The first waiting job, plus whatever else arrives within max_wait while under the budget."""
        jobs = [await self._queue.get()]
        tokens = jobs[0].pairs.tokens
        deadline = time.perf_counter() + self.max_wait
        while tokens < self.max_batch_tokens:
            if self._queue.empty():
                remaining = deadline - time.perf_counter()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            jobs.append(job)
            tokens += job.pairs.tokens
        self._record_depth()
        return [job for job in jobs if not job.future.done()]

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._gather()
            if not jobs:
                continue
            started = time.perf_counter()
            if self.metrics is not None:
                for job in jobs:
                    self.metrics.stage_seconds.labels("queue").observe(started - job.queued_at)
            input_ids = [ids for job in jobs for ids in job.pairs.input_ids]
            types = None
            if jobs[0].pairs.token_type_ids is not None:
                types = [t for job in jobs for t in job.pairs.token_type_ids]  # type: ignore[union-attr]
            abandoned = [job.abandoned for job in jobs for _ in job.pairs.input_ids]
            try:
                logits = await loop.run_in_executor(self._executor, self.forward, input_ids, types, abandoned)
            except Exception as exc:  # the model failed: tell every waiting request, keep serving
                logger.exception("inference failed on a batch of %d pairs", len(input_ids))
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(InferenceError(f"inference failed: {exc}"))
                continue
            if self.metrics is not None:
                self.metrics.stage_seconds.labels("inference").observe(time.perf_counter() - started)
                self.metrics.batch_requests.labels(self.model_name).observe(len(jobs))
            start = 0
            for job in jobs:
                end = start + len(job.pairs.input_ids)
                if not job.future.done():
                    job.future.set_result(logits[start:end])
                start = end

    def forward(
        self,
        input_ids: list[list[int]],
        token_type_ids: list[list[int]] | None,
        abandoned: Sequence[threading.Event] | None = None,
    ) -> np.ndarray:
        """All rows through the model, packed by token budget; logits in input order.

        Before each pass, rows whose ``abandoned`` event is set (their request stopped waiting) are left
        out and their logits stay zero: an abandoned request costs at most the pass already running.
        """
        logits = np.zeros((len(input_ids), self.backend.num_labels), dtype=np.float32)
        lengths = [len(ids) for ids in input_ids]
        for packed in token_budget_batches(lengths, self.max_batch_tokens):
            batch = packed if abandoned is None else [row for row in packed if not abandoned[row].is_set()]
            if not batch:
                continue
            types = None if token_type_ids is None else [token_type_ids[i] for i in batch]
            inputs = pad_batch([input_ids[i] for i in batch], types, self.pad_id)
            logits[batch] = self.backend(inputs)
            if self.metrics is not None:
                self.metrics.batch_pairs.labels(self.model_name).observe(len(batch))
                self.metrics.batch_tokens.labels(self.model_name).observe(inputs["input_ids"].size)
        return logits
