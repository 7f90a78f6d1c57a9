"""`winnow serve`: the reranking (and, with an index, search) HTTP service."""

import logging
from pathlib import Path
from typing import Annotated

import typer

from winnow.cli.common import err_console, fail
from winnow.models.registry import DEFAULT_RERANKER


def serve(
    index_dir: Annotated[
        Path | None,
        typer.Option(
            "--index", help="Index folder to serve /v1/search and /v1/ask from (default: rerank only)."
        ),
    ] = None,
    model: Annotated[
        list[str] | None,
        typer.Option(
            "--model", "-m", help="Reranker to serve; repeat to serve several (the first is the default)."
        ),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; 0.0.0.0 exposes the service to the network.")
    ] = ("127.0.0.1"),
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    backend: Annotated[str, typer.Option(help="auto, torch, onnx, onnx-int8 or openvino.")] = "auto",
    dtype: Annotated[str | None, typer.Option(help="fp32, bf16 or fp16 (torch backend).")] = None,
    max_length: Annotated[int, typer.Option(min=16, help="Most tokens per query + document pair.")] = 512,
    max_batch_tokens: Annotated[
        int, typer.Option(min=1, help="Padded tokens per forward pass, shared by concurrent requests.")
    ] = 4096,
    max_wait_ms: Annotated[
        float, typer.Option(min=0, help="How long the model waits for more requests to fill a batch.")
    ] = 5.0,
    max_concurrent_requests: Annotated[
        int, typer.Option(min=1, help="Requests in flight; beyond it 429 with Retry-After at once.")
    ] = 64,
    max_client_batch_size: Annotated[
        int, typer.Option(min=1, help="Most documents (or search candidates) per request; beyond it 413.")
    ] = 1000,
    max_body_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest request body in MB; beyond it 413.")
    ] = 10.0,
    request_timeout: Annotated[
        float, typer.Option(min=0.01, help="Seconds a request may take; past it 503 and its work is dropped.")
    ] = 30.0,
    cache_entries: Annotated[
        int,
        typer.Option(min=0, help="Scores kept for repeated query-document pairs (LRU per model); 0: off."),
    ] = 20_000,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="Require 'Authorization: Bearer KEY' on every endpoint but /health (env WINNOW_API_KEY)."
        ),
    ] = None,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="Allow browser calls from this origin (repeat; default: none).")
    ] = None,
    ray: Annotated[
        bool, typer.Option("--ray", help="Run on Ray Serve: model replicas and the index as deployments.")
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option(help="With --ray: the cluster's HOST:PORT (default: Ray on this machine).")
    ] = None,
    replicas: Annotated[int, typer.Option(min=1, help="With --ray: replicas per model.")] = 1,
    min_replicas: Annotated[
        int | None, typer.Option(min=0, help="With --ray: autoscale, at least this many replicas.")
    ] = None,
    max_replicas: Annotated[
        int | None, typer.Option(min=1, help="With --ray: autoscale, at most this many replicas.")
    ] = None,
    replica_cpus: Annotated[
        float, typer.Option(min=0.01, help="With --ray: CPUs (threads) per replica.")
    ] = 1.0,
    max_batch_size: Annotated[
        int, typer.Option(min=1, help="With --ray: requests one @serve.batch call serves together.")
    ] = 8,
) -> None:
    """Serve reranking over HTTP (Cohere's /v2/rerank, TEI's /rerank), and search / ask with --index.

    OpenAPI at /openapi.json, interactive docs at /docs, readiness at /health, Prometheus at /metrics.
    Ctrl-C or SIGTERM: requests in flight finish, new ones get 503.

    Example:

        winnow serve --model winnow-minilm-l6 --port 8080

        WINNOW_API_KEY=secret winnow serve --index .winnow-index --max-concurrent-requests 32

        curl -s localhost:8080/v2/rerank -H 'content-type: application/json' \\
            -d '{"query": "what is BM25?", "documents": ["BM25 ranks passages.", "Paris is in France."]}'

        winnow serve --ray --replicas 4 --index .winnow-index    (the same API on Ray Serve: docs/scaling.md)
    """
    # Expected errors (a missing model or index, bad settings) end in one line: see winnow.cli.common.
    from winnow.models import resolve_model
    from winnow.serve import ServeSettings, make_server

    models = tuple(model or [DEFAULT_RERANKER])
    for name in models:
        resolve_model(name)  # a missing model fails here, in one line, before the port opens
    if index_dir is not None and not index_dir.is_dir():
        raise FileNotFoundError(f"no index folder at {index_dir}; create one with `winnow index PATH`")
    settings = ServeSettings(
        models=models,
        index=index_dir,
        host=host,
        port=port,
        backend=backend,
        dtype=dtype,
        max_length=max_length,
        max_batch_tokens=max_batch_tokens,
        max_wait_ms=max_wait_ms,
        max_concurrent_requests=max_concurrent_requests,
        max_client_batch_size=max_client_batch_size,
        max_body_bytes=int(max_body_mb * 1024 * 1024),
        request_timeout=request_timeout,
        cache_entries=cache_entries,
        api_key=api_key,
        cors_origins=tuple(cors_origin or ()),
    )
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    err_console.print(f"winnow serve: loading {', '.join(models)} ...", highlight=False, soft_wrap=True)
    if ray:
        from winnow.scale.serving import Scaling, serve_on_ray

        scaling = Scaling(replicas, min_replicas, max_replicas, replica_cpus, max_batch_size)
        serve_on_ray(
            settings,
            scaling,
            ray_address,
            lambda line: err_console.print(line, highlight=False, soft_wrap=True),
        )
        return
    from winnow.serve.server import startup_line

    server = make_server(
        settings,
        on_ready=lambda service: err_console.print(startup_line(service), highlight=False, soft_wrap=True),
    )
    server.run()
    error = server.service.error  # type: ignore[attr-defined]
    if error:
        fail(error)
