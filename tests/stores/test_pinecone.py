"""PineconeStore against a loopback server that checks every request against Pinecone's documented
REST data plane (headers, paths, body fields and types) and answers like Pinecone does.

Pinecone is a paid service this machine cannot reach, so this is the one store tested against a stand-in;
the stand-in is strict: any request outside the documented shape is answered 400 and recorded.
"""

from __future__ import annotations

import json
import math
import re
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from loopback import send_json, serve

from winnow.errors import WinnowError
from winnow.records import Document
from winnow.stores.pinecone import PineconeStore

API_KEY = "pc-test-key"
_UPSERT_KEYS = {"vectors", "namespace"}
_QUERY_KEYS = {
    "namespace",
    "topK",
    "vector",
    "filter",
    "includeValues",
    "includeMetadata",
    "sparseVector",
    "id",
}
_DELETE_KEYS = {"ids", "deleteAll", "namespace", "filter"}


def _metadata_ok(metadata: Any) -> bool:
    """Pinecone metadata: a flat object of strings, numbers, booleans or lists of strings (no nulls)."""
    if not isinstance(metadata, dict):
        return False
    for value in metadata.values():
        if isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                return False
        elif not isinstance(value, str | int | float | bool):
            return False
    return True


def _matches(metadata: dict[str, Any], condition: dict[str, Any]) -> bool:
    for key, test in condition.items():
        if key == "$and":
            if not all(_matches(metadata, part) for part in test):
                return False
        elif set(test) != {"$eq"} or metadata.get(key) != test["$eq"]:
            return False
    return True


class PineconeServer:
    """An in-memory index of ``dim``-dimensional cosine vectors behind Pinecone's data-plane routes."""

    def __init__(self, dim: int = 384, page_cap: int = 100):
        self.dim = dim
        self.page_cap = page_cap
        self.records: dict[str, dict[str, dict[str, Any]]] = {}  # namespace -> id -> record
        self.errors: list[str] = []
        self.calls: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _handle(self, method: str) -> None:
                url = urlsplit(self.path)
                server.calls.append(f"{method} {url.path}")
                body = None
                if method == "POST":
                    length = int(self.headers.get("Content-Length", 0))
                    try:
                        body = json.loads(self.rfile.read(length))
                    except ValueError:
                        body = None
                status, answer = server.route(method, url.path, parse_qs(url.query), self.headers, body)
                if status >= 400:
                    server.errors.append(f"{method} {url.path}: {answer['message']}")
                send_json(self, status, answer)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.handler = Handler

    def __enter__(self) -> PineconeServer:
        self.httpd, self.url = serve(self.handler)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def route(self, method: str, path: str, params: dict, headers: Any, body: Any) -> tuple[int, dict]:
        if headers.get("Api-Key") != API_KEY:
            return 401, {"code": 16, "message": "Invalid API Key"}
        if not re.fullmatch(r"\d{4}-\d{2}", headers.get("X-Pinecone-API-Version", "")):
            return 400, {"code": 3, "message": "missing or malformed X-Pinecone-API-Version"}
        if method == "POST" and "application/json" not in headers.get("Content-Type", ""):
            return 400, {"code": 3, "message": "Content-Type must be application/json"}
        if method == "POST" and not isinstance(body, dict):
            return 400, {"code": 3, "message": "body must be a JSON object"}
        handler = {
            ("POST", "/vectors/upsert"): self.upsert,
            ("POST", "/query"): self.query,
            ("GET", "/vectors/list"): self.list,
            ("POST", "/vectors/delete"): self.delete,
        }.get((method, path))
        if handler is None:
            return 404, {"code": 5, "message": f"no route {method} {path}"}
        return handler(params if method == "GET" else body)

    def _vector_ok(self, values: Any) -> bool:
        return (
            isinstance(values, list)
            and len(values) == self.dim
            and all(isinstance(v, int | float) and math.isfinite(v) for v in values)
        )

    def upsert(self, body: dict) -> tuple[int, dict]:
        vectors = body.get("vectors")
        if set(body) - _UPSERT_KEYS or not isinstance(vectors, list) or not 0 < len(vectors) <= 1000:
            return 400, {"code": 3, "message": "upsert takes vectors (1-1000) and namespace"}
        for v in vectors:
            if set(v) - {"id", "values", "metadata", "sparseValues"}:
                return 400, {"code": 3, "message": f"unknown record fields {sorted(v)}"}
            if not isinstance(v.get("id"), str) or not 0 < len(v["id"]) <= 512:
                return 400, {"code": 3, "message": "record id must be a string of 1-512 characters"}
            if not self._vector_ok(v.get("values")):
                return 400, {"code": 3, "message": f"values must be {self.dim} finite numbers"}
            if "metadata" in v and not _metadata_ok(v["metadata"]):
                return 400, {"code": 3, "message": "metadata values must be string, number, boolean or list"}
        space = self.records.setdefault(body.get("namespace", ""), {})
        for v in vectors:
            space[v["id"]] = v
        return 200, {"upsertedCount": len(vectors)}

    def query(self, body: dict) -> tuple[int, dict]:
        if set(body) - _QUERY_KEYS or not isinstance(body.get("topK"), int) or not 1 <= body["topK"] <= 10000:
            return 400, {"code": 3, "message": "query takes topK (1-10000), vector, filter, include* flags"}
        if not self._vector_ok(body.get("vector")) or not isinstance(body.get("includeMetadata"), bool):
            return 400, {"code": 3, "message": "query needs a vector of the index dimension"}
        condition = body.get("filter", {})
        if not isinstance(condition, dict):
            return 400, {"code": 3, "message": "filter must be an object"}
        namespace = body.get("namespace", "")
        q = body["vector"]
        scored = []
        for record in self.records.get(namespace, {}).values():
            if not _matches(record.get("metadata", {}), condition):
                continue
            dot = sum(a * b for a, b in zip(q, record["values"], strict=True))
            norm = math.sqrt(sum(a * a for a in q)) * math.sqrt(sum(b * b for b in record["values"]))
            scored.append((dot / norm, record))
        scored.sort(key=lambda pair: -pair[0])
        matches = [
            {
                "id": r["id"],
                "score": s,
                **({"metadata": r.get("metadata", {})} if body["includeMetadata"] else {}),
            }
            for s, r in scored[: body["topK"]]
        ]
        return 200, {"matches": matches, "namespace": namespace, "usage": {"readUnits": 5}}

    def list(self, params: dict) -> tuple[int, dict]:
        if set(params) - {"prefix", "namespace", "limit", "paginationToken"}:
            return 400, {"code": 3, "message": f"unknown list parameters {sorted(params)}"}
        limit = int(params.get("limit", ["100"])[0])
        if not 1 <= limit <= 100:
            return 400, {"code": 3, "message": "limit must be 1-100"}
        prefix = params.get("prefix", [""])[0]
        namespace = params.get("namespace", [""])[0]
        ids = sorted(i for i in self.records.get(namespace, {}) if i.startswith(prefix))
        start = int(params.get("paginationToken", ["0"])[0])
        page = min(limit, self.page_cap)
        out: dict[str, Any] = {
            "vectors": [{"id": i} for i in ids[start : start + page]],
            "namespace": namespace,
        }
        if start + page < len(ids):
            out["pagination"] = {"next": str(start + page)}
        return 200, out

    def delete(self, body: dict) -> tuple[int, dict]:
        ids = body.get("ids")
        if set(body) - _DELETE_KEYS or not isinstance(ids, list) or not 0 < len(ids) <= 1000:
            return 400, {"code": 3, "message": "delete takes ids (1-1000) and namespace"}
        space = self.records.get(body.get("namespace", ""), {})
        for i in ids:
            space.pop(i, None)
        return 200, {}


def test_pinecone_requests_follow_the_documented_shape(tmp_path: Path) -> None:
    long_text = " ".join(
        f"Sentence {i} explains how TLS session resumption saves a round trip." for i in range(40)
    )
    with PineconeServer(page_cap=2) as server:
        store = PineconeStore(server.url, API_KEY, namespace="docs", chunk_tokens=32, chunk_overlap=0)
        doc = Document(
            id="tls/long.md", text=long_text, title="Resumption", metadata={"tags": ["tls", "rtt"]}
        )
        chunks = store.upsert([doc])
        assert chunks > 4  # several chunks, so listing them for a delete needs several pages (cap 2)
        assert len(server.records["docs"]) == chunks
        assert all(i.startswith("tls/long.md#") for i in server.records["docs"])
        assert store.upsert([doc]) == chunks and len(server.records["docs"]) == chunks  # replaced
        record = next(iter(server.records["docs"].values()))
        assert "updated_at" not in record["metadata"]  # None is left out; Pinecone rejects null
        assert record["metadata"]["tags"] == ["tls", "rtt"]

        hits = store.search("session resumption", k=3)
        assert (
            len(hits) == 3 and hits[0].doc_id == "tls/long.md" and hits[0].metadata["tags"] == ["tls", "rtt"]
        )
        assert hits[0].score >= hits[1].score >= hits[2].score
        store.delete(["tls/long.md"])
        assert server.records["docs"] == {}
        assert server.calls.count("GET /vectors/list") >= 3  # followed pagination.next to the end
        assert server.errors == []

        with pytest.raises(WinnowError, match="401"):
            PineconeStore(server.url, "wrong-key", chunk_tokens=None).search("anything", k=1)
        store.close()


def test_pinecone_needs_a_key_and_a_reachable_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PINECONE_API_KEY", raising=False)
    with pytest.raises(WinnowError, match="PINECONE_API_KEY"):
        PineconeStore("my-index.svc.pinecone.io")
    with PineconeServer() as server:
        url = server.url
    store = PineconeStore(url, API_KEY, chunk_tokens=None)  # the server is gone
    with pytest.raises(WinnowError, match="cannot reach Pinecone"):
        store.search("anything", k=1)
