"""Hosted rerankers (Cohere, Voyage AI, Jina AI) through the real SDKs against loopback servers.

The paid APIs cannot be reached from tests, so each server here stands in for one: it checks every
request against the provider's documented format (path, method, bearer key, body fields, per-request
limits), answers in the documented response format, and can be told to answer 429 / 5xx first.
Relevance is word overlap between query and document, so the expected order is known.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from loopback import send_json, serve

from winnow import Reranker
from winnow.rerank.hosted.reranker import HostedAPIError
from winnow.rerank.reranker import HostedReranker

KEY = "test-key-123"
QUERY = "how does bm25 saturate term frequency"
DOCS = [
    "Paris is the capital of France.",
    "BM25 saturates term frequency with the k1 parameter.",
    "Term frequency matters in ranking.",
]


def overlap(query: str, document: str) -> float:
    words = set(query.lower().split())
    return len(words & set(document.lower().replace(".", "").split())) / len(words)


def word_tokens(text: str) -> int:
    """A real tokenizer's count (the bundled model's word pieces), as a provider would count tokens."""
    from tokenizers import Tokenizer

    from winnow.models import resolve_model

    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = Tokenizer.from_file(str(resolve_model("winnow-minilm-l6") / "tokenizer.json"))
    return len(_TOKENIZER.encode(text, add_special_tokens=False).ids)


_TOKENIZER = None


class Provider:
    """One provider's documented contract: where it listens, what a request must hold, what it answers."""

    path = ""
    required: frozenset[str] = frozenset()
    allowed: frozenset[str] = frozenset()
    max_documents = 1_000

    def limits(self, body: dict) -> str | None:
        return None

    def answer(self, body: dict, scored: list[dict]) -> dict:
        raise NotImplementedError

    def error(self, status: int) -> dict:
        return {"detail": f"error {status}"}


class Cohere(Provider):
    # docs.cohere.com v2 rerank: model, query, documents (<= 1,000 recommended), optional top_n etc.
    path = "/v2/rerank"
    required = frozenset({"model", "query", "documents"})
    allowed = required | {"top_n", "max_tokens_per_doc", "priority", "relevant_spans"}

    def answer(self, body, scored):
        return {
            "id": "5807ee2e-0cda-445a-9ec8-864c60a06606",
            "results": scored,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"search_units": 1}},
        }

    def error(self, status):
        return {"message": f"error {status}"}


class Voyage(Provider):
    # docs.voyageai.com/reference/reranker-api: <= 1,000 documents; query tokens x documents + all
    # document tokens <= 600K for rerank-2.
    path = "/v1/rerank"
    required = frozenset({"model", "query", "documents"})
    allowed = required | {"top_k", "truncation", "return_documents"}

    def limits(self, body):
        total = word_tokens(body["query"]) * len(body["documents"]) + sum(map(word_tokens, body["documents"]))
        return f"total tokens {total} > 600000" if total > 600_000 else None

    def answer(self, body, scored):
        tokens = sum(word_tokens(body["query"]) + word_tokens(d) for d in body["documents"])
        return {"object": "list", "data": scored, "model": body["model"], "usage": {"total_tokens": tokens}}


class Jina(Provider):
    # POST https://api.jina.ai/v1/rerank {model, query, documents, top_n} -> {results, usage}
    path = "/v1/rerank"
    required = frozenset({"model", "query", "documents"})
    allowed = required | {"top_n", "return_documents"}

    def answer(self, body, scored):
        tokens = sum(word_tokens(body["query"]) + word_tokens(d) for d in body["documents"])
        results = [dict(item, document={"text": body["documents"][item["index"]]}) for item in scored]
        return {"model": body["model"], "usage": {"total_tokens": tokens}, "results": results}


class FakeAPI:
    """A loopback HTTP server for one provider; ``failures`` are (status, headers) answered first."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.requests: list[dict] = []
        self.times: list[float] = []
        self.violations: list[str] = []
        self.failures: list[tuple[int, dict[str, str]]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                api.times.append(time.monotonic())
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                api.requests.append(body)
                problem = api.check(self.path, self.headers, body)
                if problem:
                    api.violations.append(problem)
                    return send_json(self, 400, {"detail": problem})
                if api.failures:
                    status, headers = api.failures.pop(0)
                    return send_json(self, status, api.provider.error(status), headers)
                scored = [
                    {"index": i, "relevance_score": overlap(body["query"], d)}
                    for i, d in enumerate(body["documents"])
                ]
                scored.sort(key=lambda item: -item["relevance_score"])
                top = body.get("top_n") or body.get("top_k")
                send_json(self, 200, api.provider.answer(body, scored[:top] if top else scored))

        self.server, self.url = serve(Handler)

    def check(self, path, headers, body) -> str | None:
        provider = self.provider
        if path != provider.path:
            return f"wrong path {path}"
        if headers.get("Authorization") != f"Bearer {KEY}":
            return f"wrong Authorization header {headers.get('Authorization')!r}"
        if "application/json" not in (headers.get("Content-Type") or ""):
            return "body is not declared as JSON"
        if not provider.required <= set(body) or set(body) - provider.allowed:
            return f"fields {sorted(body)}; required {sorted(provider.required)}"
        documents = body["documents"]
        if not isinstance(body["query"], str) or not body["query"]:
            return "query must be a non-empty string"
        if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
            return "documents must be a list of strings"
        if not 1 <= len(documents) <= provider.max_documents:
            return f"{len(documents)} documents; the limit is {provider.max_documents}"
        return provider.limits(body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


SPECS = {
    "cohere:rerank-v3.5": (Cohere, "CO_API_KEY", "CO_API_URL", ""),
    "voyage:rerank-2": (Voyage, "VOYAGE_API_KEY", "VOYAGE_BASE_URL", "/v1"),
    "jina:jina-reranker-v2-base-multilingual": (Jina, "JINA_API_KEY", "JINA_BASE_URL", ""),
}


@pytest.fixture(params=list(SPECS))
def hosted(request, monkeypatch) -> Iterator[tuple[str, FakeAPI]]:
    """(model spec, its server), with the key and base URL in the provider's environment variables."""
    provider, key_variable, url_variable, suffix = SPECS[request.param]
    api = FakeAPI(provider())
    monkeypatch.setenv(key_variable, KEY)
    monkeypatch.setenv(url_variable, api.url + suffix)
    yield request.param, api
    api.close()


def test_hosted_reranker_has_the_reranker_api(hosted):
    spec, api = hosted
    reranker = Reranker(spec, retry_delay=0.01)
    assert isinstance(reranker, HostedReranker) and isinstance(reranker, Reranker)
    ranking = reranker.rerank(QUERY, [*DOCS, {"id": "d4", "text": "bm25 saturate term frequency"}], top_k=3)
    assert [r.index for r in ranking] == [3, 1, 2]
    assert ranking[0].document == {"id": "d4", "text": "bm25 saturate term frequency"}
    assert ranking[0].score == ranking[0].probability == pytest.approx(overlap(QUERY, ranking[0].text))
    assert ranking.model == spec
    assert list(reranker.score([(QUERY, DOCS[0]), (QUERY, DOCS[1])])) == pytest.approx(
        [overlap(QUERY, DOCS[0]), overlap(QUERY, DOCS[1])]
    )
    assert not api.violations
    assert reranker.usage.requests == 2 and reranker.usage.documents == 6 and reranker.usage.units > 0
    # The same pairs again come from the score cache: no request, nothing billed.
    again = reranker.rerank(QUERY, DOCS)
    assert again.cache_hits == 3 and reranker.usage.requests == 2


def test_429_is_retried_after_the_time_retry_after_asks(hosted):
    spec, api = hosted
    api.failures = [(429, {"Retry-After": "1"})]
    reranker = Reranker(spec, retry_delay=0.01)
    ranking = reranker.rerank(QUERY, DOCS)
    assert ranking[0].index == 1
    assert len(api.requests) == 2 and reranker.usage.retries == 1
    assert api.times[1] - api.times[0] >= 0.95
    assert not api.violations


def test_server_errors_back_off_then_give_up_with_one_line(hosted):
    spec, api = hosted
    api.failures = [(503, {}), (500, {})]
    reranker = Reranker(spec, retry_delay=0.01)
    assert reranker.rerank(QUERY, DOCS)[0].index == 1
    assert reranker.usage.retries == 2
    api.failures = [(502, {})] * 4
    with pytest.raises(HostedAPIError, match=r"failed 3 times.*502"):
        Reranker(spec, retry_delay=0.01, max_retries=2).rerank(QUERY, DOCS)


def test_client_errors_are_not_retried(hosted, monkeypatch):
    spec, api = hosted
    api.failures = [(401, {})]
    with pytest.raises(HostedAPIError, match=r"HTTP 401 \(check the API key\)"):
        Reranker(spec, retry_delay=0.01).rerank(QUERY, DOCS)
    assert len(api.requests) == 1


def test_missing_key_is_one_line_before_any_request(hosted, monkeypatch):
    spec, api = hosted
    variable = SPECS[spec][1]
    monkeypatch.delenv(variable)
    monkeypatch.delenv("COHERE_API_KEY", raising=False)
    with pytest.raises(HostedAPIError, match=f"no API key.*set {variable}"):
        Reranker(spec)
    assert api.requests == []


def test_large_requests_are_split_within_the_document_limit(hosted):
    spec, api = hosted
    documents = [f"passage {i} about term frequency" for i in range(2_345)]
    scores = Reranker(spec, cache=0).score([(QUERY, d) for d in documents])
    assert [len(body["documents"]) for body in api.requests] == [1_000, 1_000, 345]
    assert scores == pytest.approx([overlap(QUERY, d) for d in documents])
    assert not api.violations


def test_voyage_batches_stay_under_the_token_limit(monkeypatch):
    api = FakeAPI(Voyage())
    monkeypatch.setenv("VOYAGE_API_KEY", KEY)
    try:
        reranker = Reranker("voyage:rerank-2", base_url=api.url + "/v1")
        long_documents = [("term frequency saturation " * 120) + str(i) for i in range(300)]  # ~3 KB each
        ranking = reranker.rerank(QUERY, long_documents)
    finally:
        api.close()
    assert len(ranking) == 300
    assert len(api.requests) >= 2 and not api.violations
    assert sum(len(body["documents"]) for body in api.requests) == 300
    assert reranker.usage.units == sum(word_tokens(QUERY) + word_tokens(d) for d in long_documents)


def test_local_only_options_and_bad_names_are_clear_errors(monkeypatch):
    monkeypatch.setenv("CO_API_KEY", KEY)
    assert isinstance(Reranker("cohere:rerank-v3.5", max_length=512, backend="auto"), HostedReranker)
    with pytest.raises(ValueError, match="windows=True applies to local cross-encoders"):
        Reranker("cohere:rerank-v3.5", windows=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        Reranker("cohere:rerank-v3.5", colour="red")


def test_winnow_eval_compares_a_hosted_reranker_on_your_judgements(tmp_path: Path, monkeypatch):
    """`winnow eval --reranker cohere:...` scores the supplied candidates through the API."""
    from typer.testing import CliRunner

    from winnow.cli import app

    folder = tmp_path / "myset"
    (folder / "qrels").mkdir(parents=True)
    corpus = {
        "d1": "Paris is the capital of France.",
        "d2": "Cats sleep most of the day.",
        "d3": "BM25 saturates term frequency with k1.",
        "d4": "Tea grows on hills.",
    }
    queries = {"q1": "bm25 term frequency saturation", "q2": "capital of france"}
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in corpus.items())
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": k, "text": v}) + "\n" for k, v in queries.items())
    )
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td3\t1\nq2\td1\t1\n")
    # Stage 1 puts the relevant passage last; a reranker that reads the text moves it to the top.
    run = tmp_path / "run.trec"
    run.write_text(
        "".join(f"q1 Q0 {d} {r} {10 - r} bm25\n" for r, d in enumerate(["d2", "d4", "d1", "d3"], 1))
        + "".join(f"q2 Q0 {d} {r} {10 - r} bm25\n" for r, d in enumerate(["d3", "d2", "d4", "d1"], 1))
    )
    api = FakeAPI(Cohere())
    monkeypatch.setenv("CO_API_KEY", KEY)
    monkeypatch.setenv("CO_API_URL", api.url)
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "cache"))
    try:
        result = CliRunner().invoke(
            app,
            [
                "eval",
                str(folder),
                "--run",
                str(run),
                "--reranker",
                "cohere:rerank-v3.5",
                "--depths",
                "4",
                "--latency-sample",
                "1",
                "-o",
                str(tmp_path / "report"),
            ],
        )
    finally:
        api.close()
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report" / "results.json").read_text())
    assert report["settings"]["reranker"] == "cohere:rerank-v3.5"
    by_reranker = {c["reranker"]: c["metrics"] for c in report["configurations"]}
    assert set(by_reranker) == {None, "cohere:rerank-v3.5"}
    assert by_reranker[None]["nDCG@10"] < 0.5
    assert by_reranker["cohere:rerank-v3.5"]["nDCG@10"] == pytest.approx(1.0)
    assert api.requests and not api.violations


def test_a_missing_sdk_names_the_extra_to_install(monkeypatch):
    import sys

    from winnow.extras import MissingExtraError

    monkeypatch.setenv("CO_API_KEY", KEY)
    monkeypatch.setitem(sys.modules, "cohere", None)  # as if the cohere package were not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'winnow\[cohere\]'"):
        Reranker("cohere:rerank-v3.5")
