"""schemathesis over the service's own OpenAPI schema, against a live server with an index: no 5xx,
no response that breaks the schema (a bounded number of examples per operation)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from winnow.serve import ServeSettings

from .conftest import LiveServer, start_server

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


MAX_EXAMPLES = 12  # per operation: bounded, so the test stays well under a minute on 2 cores


@pytest.fixture(scope="module")
def small_server(served_reranker, sample_index_dir) -> Iterator[LiveServer]:
    """A service with an index and at most 8 documents or candidates per request, so that generated
    requests stay cheap to answer on a shared 2-core CPU."""
    settings = ServeSettings(models=("minilm",), index=sample_index_dir, max_client_batch_size=8)
    live = start_server(settings, lambda name: served_reranker)
    yield live
    live.stop()


def test_no_server_errors_and_no_schema_violations(small_server: LiveServer) -> None:
    schema = schemathesis.openapi.from_url(f"{small_server.url}/openapi.json", timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v2/rerank", "/v1/rerank", "/rerank", "/v1/search", "/v1/ask"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
        )
        def check(case) -> None:
            case.call_and_validate(base_url=small_server.url, checks=CHECKS, timeout=60)

        check()
