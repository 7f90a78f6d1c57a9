"""The HTTP routes of `winnow serve`: Cohere's and TEI's rerank shapes, search and ask over an index,
health and metrics. Request and response models here are what /openapi.json publishes.

Routes only validate, pick the model and shape the answer; scoring goes through each model's
batching worker (``winnow.serve.batching``), and limits and auth are ASGI middleware around them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from winnow.errors import ModelNotFoundError, WinnowError
from winnow.pipeline import Pipeline
from winnow.serve.auth import BearerAuthMiddleware
from winnow.serve.batching import InferenceError, WorkerStopped
from winnow.serve.errors import ServeError, error_body
from winnow.serve.limits import AdmissionMiddleware
from winnow.serve.metrics import ServeMetrics
from winnow.serve.models import BatchedReranker, Scored, ServedModel
from winnow.serve.settings import ServeSettings

logger = logging.getLogger("winnow.serve")

RERANK_ROUTES = ("/v2/rerank", "/v1/rerank", "/rerank")
ROUTES = (*RERANK_ROUTES, "/v1/search", "/v1/ask", "/health", "/metrics", "/openapi.json", "/docs")


# ---- request and response models -------------------------------------------------------------------


class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong, in one line.")
    error_type: str = Field(description="validation, not_found, payload_too_large, overloaded, timeout, ...")
    message: str = Field(description="The same as error (Cohere's clients read this field).")


class DocumentObject(BaseModel):
    model_config = ConfigDict(extra="allow")
    text: str = Field(description="The text to rank; other fields are ignored.")


class CohereRerankRequest(BaseModel):
    model: str | None = Field(None, description="A served model name; default: the first one served.")
    query: str
    documents: list[str | DocumentObject] = Field(description="Strings, or objects with a text field.")
    top_n: int | None = Field(None, gt=0, description="Keep the best n (default: all).")
    max_tokens_per_doc: int | None = Field(None, gt=0, description="Documents are cut to this many tokens.")
    return_documents: bool = Field(False, description="v1: echo each document in its result.")


class CohereDocumentText(BaseModel):
    text: str


class CohereRerankResult(BaseModel):
    index: int
    relevance_score: float = Field(description="Probability of relevance, in [0, 1].")
    document: CohereDocumentText | None = None


class CohereApiVersion(BaseModel):
    version: str


class CohereBilledUnits(BaseModel):
    search_units: int


class CohereMeta(BaseModel):
    api_version: CohereApiVersion
    billed_units: CohereBilledUnits
    warnings: list[str] = Field(default_factory=list)


class CohereRerankResponse(BaseModel):
    id: str
    results: list[CohereRerankResult]
    meta: CohereMeta


class TeiRerankRequest(BaseModel):
    query: str
    texts: list[str]
    raw_scores: bool = Field(False, description="Raw logits instead of probabilities.")
    return_text: bool = False
    truncate: bool | None = Field(None, description="Cut long texts (default: yes); false: 413 instead.")
    truncation_direction: Literal["Right", "Left", "right", "left"] = "Right"
    model: str | None = Field(None, description="A served model name (Winnow's addition to TEI's shape).")


class TeiRank(BaseModel):
    index: int
    score: float
    text: str | None = None


class SearchRequest(BaseModel):
    query: str
    candidates: int = Field(50, gt=0, description="Stage-1 candidates handed to the reranker.")
    top_k: int = Field(5, gt=0)
    mode: Literal["bm25", "dense", "hybrid"] | None = None
    filters: dict[str, Any] | None = Field(
        None, description="source, updated_after/before, metadata key = value"
    )
    min_confidence: float | None = Field(None, ge=0, le=1, description="Abstain below this probability.")
    model: str | None = None


class SearchResult(BaseModel):
    rank: int = Field(description="Final 1-based rank.")
    stage1_rank: int
    stage1_score: float | None
    score: float | None = Field(description="The reranker's raw score (logit).")
    probability: float | None
    final_score: float | None
    text: str
    doc_id: str | None
    chunk_id: str | None
    title: str
    source: str
    span: list[int] | None = Field(description="Character range of this chunk in its document.")
    updated_at: str | float | None = Field(description="The document's date (ISO 8601), for freshness.")
    authority: float | None = Field(description="The document's authority weight in [0, 1].")
    metadata: dict[str, Any] = Field(description="The document's own fields (what filters match).")


class SearchResponse(BaseModel):
    query: str
    results: list[SearchResult]
    candidates: int
    confident: bool
    abstention: str | None
    timings: dict[str, float] = Field(description="Milliseconds per stage: stage1_ms, rerank_ms, total_ms.")


class AskRequest(BaseModel):
    question: str
    candidates: int = Field(50, gt=0)
    top_k: int = Field(5, gt=0)
    budget: int = Field(1500, gt=0, description="Token budget of the passages in the prompt.")
    mode: Literal["bm25", "dense", "hybrid"] | None = None
    filters: dict[str, Any] | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)
    stream: bool = Field(False, description="Server-Sent Events: token events, then one answer event.")
    model: str | None = None


class AskResponse(BaseModel):
    model_config = ConfigDict(extra="allow")
    question: str
    mode: str
    text: str
    citations: list[int]
    sources: list[dict[str, Any]]
    error: str | None
    best_score: float | None
    timings: dict[str, float]


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "failed"]
    models: list[str]
    index: bool
    error: str | None = None


ERRORS = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Bad input (empty query, no documents, a query too long for the model)",
        401: "Missing or wrong API key",
        404: "Unknown model",
        408: "The body did not arrive in time",
        413: "Body, document count or document length over the limit",
        422: "Wrong shape or types",
        429: "Too many concurrent requests (Retry-After)",
        503: "Loading, shutting down, or the request timed out",
    }.items()
}


# ---- the service --------------------------------------------------------------------------------


class Service:
    """What the routes share: settings, loaded models, the index, metrics, and readiness."""

    def __init__(self, settings: ServeSettings, metrics: ServeMetrics, loader: Callable[[str], Any]):
        self.settings = settings
        self.metrics = metrics
        self.loader = loader
        self.models: dict[str, ServedModel] = {}
        self.index = None
        self.index_lock = threading.Lock()
        self.llm = None
        self.ready = asyncio.Event()
        self.error: str | None = None
        self.on_ready: Callable[[Service], None] | None = None
        self.on_failure: Callable[[str], None] | None = None

    async def load(self) -> None:
        """Load every model (and the index) in a thread, then start their workers."""
        try:
            for name in self.settings.models:
                self.models[name] = await self.open_model(name)
            if self.settings.index is not None:
                from winnow.answer import ChatClient

                self.index = await asyncio.to_thread(self.open_index, self.settings.index)
                self.llm = ChatClient.from_env()
        except Exception as exc:  # whatever stops a model from loading stops the service, in one line
            self.error = str(exc) or type(exc).__name__
            logger.error("winnow serve could not start: %s", self.error)
            if self.on_failure is not None:
                self.on_failure(self.error)
            return
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready(self)

    async def open_model(self, name: str) -> ServedModel:
        """A model loaded in this process with its batching worker running (``winnow serve --ray``'s
        service overrides this and ``open_index`` to reach its deployments instead)."""
        reranker = await asyncio.to_thread(self.loader, name)
        model = ServedModel(
            name, reranker, self.settings.max_batch_tokens, self.settings.max_wait_ms, self.metrics
        )
        model.worker.start()
        return model

    def open_index(self, path: Path) -> Any:
        from winnow.retrieve import Index

        return Index.open(path)

    async def close(self) -> None:
        for model in self.models.values():
            await model.worker.stop()
        if self.index is not None:
            self.index.close()

    def model(self, name: str | None) -> ServedModel:
        if not self.ready.is_set():
            raise ServeError(503, "the model is still loading; retry when /health says ok", "unavailable")
        if not name:
            return next(iter(self.models.values()))
        for model in self.models.values():
            if name in model.aliases:
                return model
        served = ", ".join(self.models)
        raise ServeError(404, f"unknown model {name!r}; this service serves: {served}", "not_found")

    def check_documents(self, count: int) -> None:
        if count == 0:
            raise ServeError(400, "no documents: send at least one document to rank")
        limit = self.settings.max_client_batch_size
        if count > limit:
            raise ServeError(
                413,
                f"{count} documents in one request; the limit is {limit} (--max-client-batch-size)",
                "payload_too_large",
            )

    def pipeline(self, model: ServedModel, min_confidence: float | None) -> _LockedPipeline:
        if self.index is None:
            raise ServeError(404, "this service has no index: start it with --index DIR", "not_found")
        return _LockedPipeline(
            self.index, BatchedReranker(model, asyncio.get_running_loop()), self.index_lock, min_confidence
        )


class _LockedPipeline(Pipeline):
    """A Pipeline whose stage 1 runs one request at a time (the index's SQLite connection and search
    structures are shared), while reranking runs concurrently through the batching worker.

    ``await pipeline.run(work, ...)`` runs ``work`` in a worker thread; a request that times out
    abandons it: its scoring is cancelled and the thread stops at its next step (stage 1 or a rerank)."""

    def __init__(
        self, index, reranker: BatchedReranker, lock: threading.Lock, min_confidence: float | None
    ) -> None:
        super().__init__(index, reranker, min_confidence=min_confidence)
        self.batched = reranker
        self._lock = lock

    async def run(self, work: Callable[..., Any], *args: Any) -> Any:
        return await self.batched.run(work, *args)

    def _recall(self, query: str, candidates: int, filters: Any, mode: Any) -> Any:
        # The served index is an Index, here or behind `winnow serve --ray`'s index deployment: both take
        # the request's mode.
        with self._lock:
            self.batched.check()  # abandoned while waiting for the index: no search for nobody
            return self.index.search(query, k=candidates, mode=mode or self.mode, filters=filters)


async def _within_deadline(request: Request, work):
    """Run ``work`` until the request's deadline; past it, 503, and the cancellation drops the work:
    queued pairs never reach the model, the passes still to run for them are skipped, and a pipeline
    thread stops at its next step."""
    deadline = request.scope.get("state", {}).get("deadline")
    if deadline is None:
        return await work
    try:
        async with asyncio.timeout_at(deadline):
            return await work
    except TimeoutError:
        request.app.state.service.metrics.rejected.labels("timeout").inc()
        raise ServeError(
            503,
            "the request timed out waiting for the model; its work was dropped",
            "timeout",
            {"retry-after": "1"},
        ) from None


def _check_query(text: str, field: str = "query") -> None:
    if not text.strip():
        raise ServeError(400, f"{field} is empty: send the text to rank documents against")


def _truncation_warning(scored: Scored) -> list[str]:
    cut = sum(scored.truncated)
    return [f"{cut} of {len(scored.truncated)} documents were truncated to fit"] if cut else []


def create_app(
    settings: ServeSettings,
    loader: Callable[[str], Any] | None = None,
    service_class: type[Service] = Service,
) -> FastAPI:
    """The service as an ASGI app. ``loader(name)`` returns a Reranker (default: ``Reranker(name, ...)``
    with the settings' backend, dtype and max_length); models load in the background after start-up,
    and /health says ok once they have. ``service_class`` decides where models and the index run."""
    metrics = ServeMetrics()
    service = service_class(settings, metrics, loader or default_loader(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(service.load())
        try:
            yield
        finally:
            task.cancel()
            await service.close()

    app = FastAPI(
        title="Winnow",
        summary="Cross-encoder reranking (Cohere and TEI shapes), search and answers over an index.",
        version="1",
        lifespan=lifespan,
    )
    app.state.service = service

    @app.exception_handler(ServeError)
    async def _serve_error(request: Request, exc: ServeError) -> JSONResponse:
        return JSONResponse(error_body(exc.message, exc.kind), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "validation")
        message = (
            f"{exc.detail}: {request.method} {request.url.path}"
            if exc.status_code in (404, 405)
            else exc.detail
        )
        return JSONResponse(error_body(str(message), kind), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body') or 'body'}: {e.get('msg')}"
            for e in exc.errors()[:5]
        )
        return JSONResponse(error_body(f"invalid request: {problems}", "validation"), status_code=422)

    @app.exception_handler(ModelNotFoundError)
    async def _model_missing(request: Request, exc: ModelNotFoundError) -> JSONResponse:
        return JSONResponse(error_body(str(exc), "not_found"), status_code=404)

    @app.exception_handler(ValueError)
    @app.exception_handler(TypeError)
    @app.exception_handler(WinnowError)
    async def _bad_input(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(error_body(str(exc), "validation"), status_code=400)

    @app.exception_handler(InferenceError)
    @app.exception_handler(WorkerStopped)
    async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse(
            error_body(str(exc), "unavailable"), status_code=503, headers={"retry-after": "1"}
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error on %s", request.url.path)
        message = f"internal error ({type(exc).__name__}); the server log has the details"
        return JSONResponse(error_body(message, "internal"), status_code=503)

    async def cohere_rerank(
        body: CohereRerankRequest, request: Request, version: str
    ) -> CohereRerankResponse:
        _check_query(body.query)
        service.check_documents(len(body.documents))
        model = service.model(body.model)
        texts = [d if isinstance(d, str) else d.text for d in body.documents]
        scored = await _within_deadline(
            request, model.score([body.query] * len(texts), texts, body.max_tokens_per_doc)
        )
        order = scored.order()[: body.top_n]
        results = [
            CohereRerankResult(
                index=i,
                relevance_score=float(scored.probabilities[i]),
                document=CohereDocumentText(text=texts[i]) if body.return_documents else None,
            )
            for i in order
        ]
        meta = CohereMeta(
            api_version=CohereApiVersion(version=version),
            billed_units=CohereBilledUnits(search_units=1),
            warnings=_truncation_warning(scored),
        )
        return CohereRerankResponse(id=str(uuid.uuid4()), results=results, meta=meta)

    def cohere_route(version: str):
        async def rerank_cohere(body: CohereRerankRequest, request: Request) -> CohereRerankResponse:
            return await cohere_rerank(body, request, version)

        return rerank_cohere

    for version in ("2", "1"):
        app.post(
            f"/v{version}/rerank",
            response_model=CohereRerankResponse,
            response_model_exclude_none=True,
            responses=ERRORS,
            tags=["rerank"],
            summary=f"Rerank documents (Cohere v{version} shape)",
            operation_id=f"rerank_v{version}",
        )(cohere_route(version))

    @app.post(
        "/rerank",
        response_model=list[TeiRank],
        response_model_exclude_none=True,
        responses=ERRORS,
        tags=["rerank"],
        summary="Rerank texts (Text Embeddings Inference shape)",
    )
    async def rerank_tei(body: TeiRerankRequest, request: Request) -> list[TeiRank]:
        _check_query(body.query)
        service.check_documents(len(body.texts))
        model = service.model(body.model)
        direction = "left" if body.truncation_direction.lower() == "left" else "right"
        scored = await _within_deadline(
            request, model.score([body.query] * len(body.texts), body.texts, None, direction)
        )
        if body.truncate is False and any(scored.truncated):
            first = scored.truncated.index(True)
            raise ServeError(
                413,
                f"text {first} is longer than the model's {model.reranker.max_length} tokens with the query "
                "and truncate is false",
                "payload_too_large",
            )
        values = scored.scores if body.raw_scores else scored.probabilities
        return [
            TeiRank(index=i, score=float(values[i]), text=body.texts[i] if body.return_text else None)
            for i in scored.order()
        ]

    @app.post("/v1/search", response_model=SearchResponse, responses=ERRORS, tags=["search"])
    async def search(body: SearchRequest, request: Request) -> SearchResponse:
        """Stage 1 over the served index, then the reranker: results with both ranks and per-stage timings."""
        _check_query(body.query)
        service.check_documents(body.candidates)
        pipeline = service.pipeline(service.model(body.model), body.min_confidence)
        response = await _within_deadline(
            request,
            pipeline.run(pipeline.search, body.query, body.candidates, body.top_k, body.filters, body.mode),
        )
        for stage in ("stage1", "rerank"):
            metrics.stage_seconds.labels(stage).observe(response.timings.get(f"{stage}_ms", 0.0) / 1000)
        return SearchResponse(
            query=response.query,
            results=[
                SearchResult(
                    rank=r.rank,
                    stage1_rank=r.stage1_rank,
                    stage1_score=r.stage1_score,
                    score=r.score,
                    probability=r.probability,
                    final_score=r.final_score,
                    text=r.text,
                    doc_id=r.doc_id,
                    chunk_id=r.chunk_id,
                    title=r.title,
                    source=r.source,
                    span=list(r.span) if r.span else None,
                    updated_at=_jsonable(r.updated_at),
                    authority=r.authority,
                    metadata=_jsonable(r.metadata),
                )
                for r in response
            ],
            candidates=response.candidates,
            confident=response.confident,
            abstention=response.abstention.reason if response.abstention else None,
            timings=response.timings,
        )

    @app.post(
        "/v1/ask",
        response_model=AskResponse,
        responses={
            **ERRORS,
            200: {"content": {"text/event-stream": {}}, "description": "JSON, or SSE with stream=true"},
        },
        tags=["search"],
    )
    async def ask(body: AskRequest, request: Request) -> Any:
        """An answer with numbered citations (a chat model's when WINNOW_LLM_* is set, else quoted
        sentences); with ``stream: true`` as Server-Sent Events: ``token`` events, then ``answer``."""
        from winnow.answer import ask as ask_question

        _check_query(body.question, "question")
        service.check_documents(body.candidates)
        pipeline = service.pipeline(service.model(body.model), body.min_confidence)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def run() -> dict[str, Any]:
            answer = ask_question(
                pipeline,
                body.question,
                llm=service.llm,
                candidates=body.candidates,
                top_k=body.top_k,
                token_budget=body.budget,
                stream=body.stream and service.llm is not None,
                on_token=lambda piece: loop.call_soon_threadsafe(events.put_nowait, ("token", piece)),
                filters=body.filters,
                mode=body.mode,
            )
            return _jsonable(answer.to_dict())

        if not body.stream:
            return await _within_deadline(request, pipeline.run(run))
        return StreamingResponse(
            _sse(asyncio.ensure_future(asyncio.to_thread(run)), events), media_type="text/event-stream"
        )

    @app.get(
        "/health", response_model=HealthResponse, responses={503: {"model": HealthResponse}}, tags=["ops"]
    )
    async def health() -> Any:
        """200 once every model is loaded; 503 while loading (or when loading failed)."""
        status = "ok" if service.ready.is_set() else ("failed" if service.error else "loading")
        payload = HealthResponse(
            status=status, models=list(settings.models), index=settings.index is not None, error=service.error
        )
        return JSONResponse(payload.model_dump(), status_code=200 if status == "ok" else 503)

    @app.get(
        "/metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        tags=["ops"],
    )
    async def prometheus_metrics() -> Response:
        """Prometheus text format: requests, latency per stage, batch sizes, queue depth, rejects."""
        return Response(metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    return app


async def _sse(task: asyncio.Future, events: asyncio.Queue) -> AsyncIterator[str]:
    """``token`` events while the answer is written, then one ``answer`` (or ``error``) event."""
    while not (task.done() and events.empty()):
        getter = asyncio.ensure_future(events.get())
        done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            _, piece = getter.result()
            yield f"event: token\ndata: {json.dumps({'text': piece})}\n\n"
        else:
            getter.cancel()
    try:
        answer = task.result()
    except Exception as exc:  # the error goes to the client as an event: headers are already sent
        yield f"event: error\ndata: {json.dumps(error_body(str(exc), 'validation'))}\n\n"
        return
    yield f"event: answer\ndata: {json.dumps(answer)}\n\n"


def _jsonable(value: Any) -> Any:
    """A value as JSON would carry it (dates become ISO strings)."""
    return json.loads(json.dumps(value, default=str))


def default_loader(settings: ServeSettings) -> Callable[[str], Any]:
    """How a service loads a model by name: a Reranker with the settings' backend, dtype, max_length and
    score cache size."""

    def load(name: str):
        from winnow.rerank import Reranker

        return Reranker(
            name,
            backend=settings.backend,
            dtype=settings.dtype,
            max_length=settings.max_length,
            cache=settings.cache_entries,
        )

    return load


def build_asgi(
    settings: ServeSettings,
    loader: Callable[[str], Any] | None = None,
    service_class: type[Service] = Service,
):
    """The app wrapped in its middleware: CORS (when configured), then auth, then admission limits.

    Returns (asgi_app, fastapi_app, admission); admission's ``draining`` flag turns new requests
    away with 503 during shutdown."""
    app = create_app(settings, loader, service_class)
    service: Service = app.state.service
    admission = AdmissionMiddleware(
        app,
        service.metrics,
        settings.max_concurrent_requests,
        settings.max_body_bytes,
        settings.request_timeout,
        ROUTES,
    )
    outer: Any = admission
    api_key = settings.resolved_api_key
    if api_key:
        outer = BearerAuthMiddleware(outer, api_key, service.metrics)
    if settings.cors_origins:
        outer = CORSMiddleware(
            outer,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
        )
    return outer, app, admission
