"""`winnow serve --ray`: the same HTTP service as `winnow serve`, its models and index on Ray Serve.

Three kinds of deployment, one Ray Serve application:

- ``RerankerReplica``, one deployment per served model: each replica loads the model once and scores
  requests through ``@serve.batch``: requests that arrive within ``batch_wait_timeout_s`` of each other
  (at most ``max_batch_size``) share forward passes, their pairs packed by token budget exactly as in
  `winnow serve` (``BatchWorker.forward``). A fixed number of replicas, or autoscaling between a
  minimum and a maximum on ongoing requests.
- ``Stage1Index``: the index opened once per replica; /v1/search's and /v1/ask's recall.
- ``Ingress``: `winnow serve`'s own app (``winnow.serve.build_asgi``: routes, request and response
  models, errors, limits, auth, metrics), whose models and index are handles to the deployments above.
  Nothing of the HTTP API is written twice, so the two services cannot drift apart.

The ingress's /metrics counts what the ingress sees (requests, latency, rejects); batch sizes live in
each replica (``RerankerReplica.batching``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from winnow.errors import WinnowError
from winnow.extras import require_extra
from winnow.records import Candidate
from winnow.scale.cluster import ray_cluster
from winnow.serve.app import Service, build_asgi, default_loader
from winnow.serve.batching import BatchWorker, EncodedPairs, InferenceError
from winnow.serve.errors import ServeError
from winnow.serve.metrics import ServeMetrics
from winnow.serve.models import Direction, Scored, ServedModel
from winnow.serve.settings import ServeSettings

with require_extra("ray", "ray"):
    from ray import serve
    from ray.exceptions import RayActorError, RayTaskError
    from ray.serve.exceptions import BackPressureError, DeploymentUnavailableError
    from ray.serve.handle import DeploymentHandle

APP_NAME = "winnow"
INGRESS = "winnow-ingress"
INDEX = "winnow-index"
DEFAULT_MAX_BATCH_SIZE = 8  # requests per @serve.batch call; their pairs are packed by token budget
AUTOSCALE_TARGET_ONGOING = 2  # ongoing requests per replica autoscaling aims for: latency over batch size
READY_TIMEOUT_S = 120.0
# Settings replicas read from the environment: the LLM for /v1/ask, the API key, where models come from.
FORWARDED_ENV = ("WINNOW_", "HF_", "HUGGINGFACE_")


def reranker_deployment(position: int) -> str:
    return f"winnow-reranker-{position}"


@dataclass(frozen=True)
class Scaling:
    """How many reranker replicas: ``replicas``, or autoscaling from ``min_replicas`` to ``max_replicas``
    when either is given; each replica holds ``cpus_per_replica`` CPUs (its torch threads)."""

    replicas: int = 1
    min_replicas: int | None = None
    max_replicas: int | None = None
    cpus_per_replica: float = 1.0
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE

    def __post_init__(self) -> None:
        low, high = self.bounds
        if self.replicas < 1 or low < 0 or high < max(1, low):
            raise ValueError(
                "replicas must be at least 1 and 0 <= min-replicas <= max-replicas (max at least 1); "
                f"got {self.replicas}, {self.min_replicas}, {self.max_replicas}"
            )
        if self.cpus_per_replica <= 0 or self.max_batch_size < 1:
            raise ValueError("cpus per replica must be above 0 and max batch size at least 1")

    @property
    def autoscaling(self) -> bool:
        return self.min_replicas is not None or self.max_replicas is not None

    @property
    def bounds(self) -> tuple[int, int]:
        """Autoscaling's (min, max) replicas; a missing end is 1, or the larger of min and ``replicas``."""
        low = 1 if self.min_replicas is None else self.min_replicas
        return low, max(low, self.replicas) if self.max_replicas is None else self.max_replicas

    def deployment_options(self) -> dict[str, Any]:
        """Ray Serve options of a reranker deployment."""
        options: dict[str, Any] = {
            "ray_actor_options": {"num_cpus": self.cpus_per_replica, "runtime_env": _runtime_env()},
            # One batch running and one gathering; more waits in the callers' queues, not in the replica.
            "max_ongoing_requests": 2 * self.max_batch_size,
        }
        if self.autoscaling:
            low, high = self.bounds
            options["autoscaling_config"] = {
                "min_replicas": low,
                "initial_replicas": max(1, low),
                "max_replicas": high,
                "target_ongoing_requests": AUTOSCALE_TARGET_ONGOING,
            }
        else:
            options["num_replicas"] = self.replicas
        return options

    def describe(self) -> str:
        if self.autoscaling:
            return "autoscaling {}-{} replicas".format(*self.bounds)
        return f"{self.replicas} replica{'s' if self.replicas != 1 else ''}"


def _runtime_env() -> dict[str, Any]:
    return {"env_vars": {k: v for k, v in os.environ.items() if k.startswith(FORWARDED_ENV)}}


# ---- the reranker replicas -------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelInfo:
    """What the ingress needs of a replica's model: names, limits, and the tokenizer (for /v1/ask's
    context budget), without loading the model itself."""

    name: str
    model_name: str
    backend_name: str
    dtype: str
    device: str
    max_length: int
    tokenizer: Any


class _ServeBatchWorker(BatchWorker):
    """``BatchWorker``'s packing and forward pass, fed by Ray Serve's ``@serve.batch`` instead of its own
    queue: Ray Serve gathers the requests, ``forward`` packs their pairs by token budget."""

    batches = 0
    largest = 0

    def start(self) -> None:
        """Nothing to start: Ray Serve runs the batching loop."""

    async def stop(self) -> None:
        """Nothing to stop: the replica ends with its deployment."""

    async def submit(self, pairs: EncodedPairs) -> np.ndarray:
        if not pairs.input_ids:
            return np.zeros((0, self.backend.num_labels), dtype=np.float32)
        return await self._batched(pairs)

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH_SIZE, batch_wait_timeout_s=0.005)
    async def _batched(self, requests: list[EncodedPairs]) -> list[np.ndarray]:
        input_ids = [ids for pairs in requests for ids in pairs.input_ids]
        types = None
        if requests[0].token_type_ids is not None:
            types = [t for pairs in requests for t in pairs.token_type_ids]  # type: ignore[union-attr]
        try:
            logits = await asyncio.to_thread(self.forward, input_ids, types)
        except Exception as exc:  # every request of the batch hears it; the replica keeps serving
            raise InferenceError(f"inference failed: {exc}") from exc
        self.batches += 1
        self.largest = max(self.largest, len(requests))
        if self.metrics is not None:
            self.metrics.batch_requests.labels(self.model_name).observe(len(requests))
        bounds = np.cumsum([0, *(len(pairs.input_ids) for pairs in requests)])
        return [logits[start:end] for start, end in itertools.pairwise(bounds)]


class RerankerReplica:
    """One served model in one replica: loaded once, tokenizing and scoring as `winnow serve` does."""

    def __init__(self, settings: ServeSettings, name: str, max_batch_size: int) -> None:
        reranker = default_loader(settings)(name)
        self.model = ServedModel(
            name,
            reranker,
            settings.max_batch_tokens,
            settings.max_wait_ms,
            ServeMetrics(),
            worker_class=_ServeBatchWorker,
        )
        _ServeBatchWorker._batched.set_max_batch_size(max_batch_size)
        _ServeBatchWorker._batched.set_batch_wait_timeout_s(settings.max_wait_ms / 1000)

    def describe(self) -> ModelInfo:
        r = self.model.reranker
        return ModelInfo(
            self.model.name,
            str(r.model_name),
            r.backend_name,
            str(r.dtype),
            r.device,
            r.max_length,
            r.tokenizer,
        )

    async def score(
        self, queries: list[str], texts: list[str], max_tokens_per_doc: int | None, direction: Direction
    ) -> Scored:
        return await self.model.score(queries, texts, max_tokens_per_doc, direction)

    def batching(self) -> dict[str, Any]:
        """This replica's batches so far and the most requests one of them served."""
        worker = self.model.worker
        return {"replica": serve.get_replica_context().replica_id.unique_id, "batches": worker.batches,
                "largest": worker.largest}  # fmt: skip


class Stage1Index:
    """The index, opened once per replica (its folder must be readable where the replica runs)."""

    def __init__(self, path: str) -> None:
        from winnow.retrieve import Index

        self.index = Index.open(path)
        self.index.embedder.prepare_queries()  # the query model loads now, not at the first search

    def search(self, query: str, k: int, mode: str, filters: Any) -> list[Candidate]:
        return self.index.search(query, k=k, mode=mode, filters=filters)


# ---- the ingress: winnow serve's app over deployment handles -----------------------------------------


@contextlib.contextmanager
def _replica_errors() -> Iterator[None]:
    """A replica's own error (a query too long: ValueError) is raised here as itself, so the app answers
    it as `winnow serve` does; a replica that is gone or overloaded is a 503 with Retry-After."""
    try:
        yield
    except RayTaskError as exc:
        raise exc.cause from None
    except BackPressureError as exc:
        raise ServeError(
            503, f"the replicas are full ({exc}); retry", "overloaded", {"retry-after": "1"}
        ) from None
    except (RayActorError, DeploymentUnavailableError) as exc:
        raise InferenceError(f"a replica is unavailable ({type(exc).__name__}); retry") from None


class _RemoteModel:
    """A served model as the app sees it (``ServedModel``'s interface), scored by its deployment."""

    aliases = ServedModel.aliases

    def __init__(self, info: ModelInfo, handle: DeploymentHandle) -> None:
        self.name = info.name
        self.reranker = info
        self.handle = handle

    async def score(
        self,
        queries: list[str],
        texts: list[str],
        max_tokens_per_doc: int | None = None,
        direction: Direction = "right",
    ) -> Scored:
        with _replica_errors():
            return await self.handle.score.remote(queries, texts, max_tokens_per_doc, direction)


class _RemoteIndex:
    """``Index.search`` as the app's pipeline calls it (from a worker thread), answered by the index
    deployment."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self.handle = handle

    def search(self, query: str, k: int = 100, mode: str = "hybrid", filters: Any = None) -> list[Candidate]:
        with _replica_errors():
            return self.handle.search.remote(query, k, mode, filters).result()

    def close(self) -> None:
        """The index closes with its deployment."""


class _RayService(Service):
    """The app's service with its models and index in other Ray processes."""

    rerankers: dict[str, DeploymentHandle]
    index_handle: DeploymentHandle | None

    def __init__(self, settings: ServeSettings, metrics: ServeMetrics, loader: Callable[[str], Any]) -> None:
        super().__init__(settings, metrics, loader)
        # Stage 1 runs in the index deployment's replicas, each with its own index: no lock needed here.
        self.index_lock = contextlib.nullcontext()  # type: ignore[assignment]

    async def open_model(self, name: str) -> _RemoteModel:  # type: ignore[override]
        handle = self.rerankers[name]
        with _replica_errors():
            info = await handle.describe.remote()
        return _RemoteModel(info, handle)

    def open_index(self, path: Path) -> _RemoteIndex:
        assert self.index_handle is not None
        return _RemoteIndex(self.index_handle)

    async def close(self) -> None:
        """Nothing runs here to stop: the replicas end with the application."""


@serve.ingress()
class Ingress:
    """`winnow serve`'s ASGI app (middleware included), built in the replica around the handles."""

    def __init__(
        self, settings: ServeSettings, rerankers: dict[str, DeploymentHandle], index: DeploymentHandle | None
    ) -> None:
        self.settings = settings
        self.rerankers = rerankers
        self.index = index

    def __serve_build_asgi_app__(self) -> Any:
        asgi, app, _ = build_asgi(self.settings, service_class=_RayService)
        app.state.service.rerankers = self.rerankers
        app.state.service.index_handle = self.index
        return asgi


def application(settings: ServeSettings, scaling: Scaling) -> Any:
    """The Ray Serve application: ingress, one reranker deployment per model, the index if any."""
    env = {"runtime_env": _runtime_env(), "num_cpus": 0}  # ingress and index: light beside the models
    rerankers = {
        name: serve.deployment(RerankerReplica)
        .options(name=reranker_deployment(i), **scaling.deployment_options())
        .bind(settings, name, scaling.max_batch_size)
        for i, name in enumerate(settings.models)
    }
    index = None
    if settings.index is not None:
        index = (
            serve.deployment(Stage1Index).options(name=INDEX, ray_actor_options=env).bind(str(settings.index))
        )
    ingress = serve.deployment(Ingress).options(
        name=INGRESS,
        ray_actor_options=env,
        # Past the service's own limit its admission middleware answers 429, so let requests reach it.
        max_ongoing_requests=settings.max_concurrent_requests + 16,
        graceful_shutdown_timeout_s=settings.graceful_timeout,
    )
    return ingress.bind(settings, rerankers, index)


def startup_line(settings: ServeSettings, scaling: Scaling, models: list[ModelInfo]) -> str:
    described = ", ".join(
        f"{m.name} ({m.backend_name}, {m.dtype}, {m.device}, max_length {m.max_length})" for m in models
    )
    index = f"index {settings.index}" if settings.index else "rerank only"
    auth = "api key required" if settings.resolved_api_key else "no auth"
    return (
        f"winnow serve --ray ready: model {described}, {scaling.describe()} of {scaling.cpus_per_replica:g} "
        f"CPU each, @serve.batch max_batch_size {scaling.max_batch_size}, batch_wait "
        f"{settings.max_wait_ms:g} ms; {index}; max_concurrent_requests {settings.max_concurrent_requests}; "
        f"{auth}; http://{settings.host}:{settings.port}"
    )


def _wait_until_healthy(settings: ServeSettings) -> None:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}/health"
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            reply = httpx.get(url, timeout=5)
            if reply.status_code == 200:
                return
            if reply.json().get("status") == "failed":
                raise WinnowError(f"the service could not start: {reply.json().get('error')}")
        time.sleep(0.2)
    raise WinnowError(f"the service did not answer {url} within {READY_TIMEOUT_S:g} s")


def deploy(settings: ServeSettings, scaling: Scaling) -> list[ModelInfo]:
    """Start (or update) the application on the connected Ray, wait until /health says ok, and return
    what each model's replicas loaded."""
    from ray.serve.schema import LoggingConfig

    serve.start(http_options={"host": settings.host, "port": settings.port})
    try:
        serve.run(
            application(settings, scaling),
            name=APP_NAME,
            route_prefix="/",
            logging_config=LoggingConfig(log_level="WARNING", enable_access_log=False),
        )
    except RuntimeError as exc:  # a replica that cannot start: Ray Serve gives up after its retries
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WinnowError(
            f"Ray Serve could not start the service ({first}); the replicas' logs are in Ray's log "
            "folder (/tmp/ray/session_latest/logs/serve on the node that ran them)"
        ) from exc
    _wait_until_healthy(settings)
    return [
        serve.get_deployment_handle(reranker_deployment(i), APP_NAME).describe.remote().result()
        for i in range(len(settings.models))
    ]


def serve_on_ray(
    settings: ServeSettings,
    scaling: Scaling,
    address: str | None = None,
    on_ready: Callable[[str], object] | None = None,
) -> None:
    """`winnow serve --ray`: deploy, tell ``on_ready`` the start-up line, serve until SIGINT or SIGTERM,
    then delete the application (requests in flight finish within the graceful timeout)."""
    stop = threading.Event()
    with ray_cluster(address):
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        try:
            models = deploy(settings, scaling)
            if on_ready is not None:
                on_ready(startup_line(settings, scaling, models))
            stop.wait()
        finally:
            serve.delete(APP_NAME)
