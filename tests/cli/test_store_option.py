"""`winnow search --store`: one URI (or YAML file) opens any supported vector database."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from readme_examples import run_readme_example
from stores.test_pinecone import API_KEY, PineconeServer
from typer.testing import CliRunner

from winnow.cli import app
from winnow.errors import WinnowError
from winnow.extras import MissingExtraError
from winnow.records import Document
from winnow.stores.chroma import ChromaStore
from winnow.stores.milvus import MilvusStore
from winnow.stores.open import open_store

runner = CliRunner()
DOCS = [
    Document(
        id="tls.md", text="TLS 1.3 needs one round trip for a full handshake.", metadata={"topic": "net"}
    ),
    Document(
        id="dns.md", text="DNS resolvers cache answers for the record's TTL.", metadata={"topic": "net"}
    ),
    Document(
        id="gil.md", text="The GIL lets one thread run Python bytecode at a time.", metadata={"topic": "py"}
    ),
]


def search(*args: str) -> list[dict]:
    result = runner.invoke(app, ["search", *args, "--no-rerank", "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_search_store_uri_and_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ChromaStore.open(tmp_path / "chroma", "docs", chunk_tokens=None).upsert(DOCS)
    MilvusStore.open(tmp_path / "milvus.db", "docs", chunk_tokens=None).upsert(DOCS)

    rows = search("tls handshake round trip", "--store", f"chroma://{tmp_path}/chroma?collection=docs")
    assert rows[0]["doc_id"] == "tls.md" and rows[0]["metadata"]["topic"] == "net"
    rows = search(
        "python threads", "--store", f"milvus://{tmp_path}/milvus.db?collection=docs", "-f", "topic=net"
    )
    assert {r["doc_id"] for r in rows} == {"tls.md", "dns.md"}

    config = tmp_path / "store.yaml"
    config.write_text(f"uri: chroma://{tmp_path}/chroma\ncollection: docs\nchunk_tokens: 0\n")
    assert search("dns cache ttl", "--store", str(config), "-k", "1")[0]["doc_id"] == "dns.md"

    with PineconeServer() as server:
        uri = f"pinecone+http://{server.url.split('://')[1]}?namespace=docs&chunk_tokens=0"
        monkeypatch.setenv("PINECONE_API_KEY", API_KEY)
        open_store(uri).upsert(DOCS)
        assert search("dns cache ttl", "--store", uri, "-k", "1")[0]["doc_id"] == "dns.md"
        assert server.errors == []
    qdrant = f"qdrant://{tmp_path}/qdrant?collection=docs&chunk_tokens=0"
    open_store(qdrant, create=True).upsert(DOCS)
    assert search("bytecode threads", "--store", qdrant, "-k", "1")[0]["doc_id"] == "gil.md"

    if os.environ.get("WINNOW_TEST_PG_DSN"):
        dsn = os.environ["WINNOW_TEST_PG_DSN"]
        store = open_store(f"{dsn}?table=cli_docs&chunk_tokens=0")
        store.upsert(DOCS)
        rows = search("bytecode threads", "--store", f"{dsn}?table=cli_docs", "-k", "1")
        assert rows[0]["doc_id"] == "gil.md"
        store.connection.execute("DROP TABLE cli_docs")

    for bad, message in [
        ("mongodb://x", "unknown store"),
        (str(tmp_path / "missing.yaml"), "cannot read store config"),
        ("postgresql://nobody@127.0.0.1:1/none", "cannot connect to PostgreSQL"),
        (f"chroma://{tmp_path}/chroma?collection=docs&chunk_tokens=many", "whole number"),
        (f"chroma://{tmp_path}/typo", "no chroma database at"),
    ]:
        result = runner.invoke(app, ["search", "tls", "--store", bad, "--no-rerank"])
        assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output
    result = runner.invoke(
        app, ["search", "tls", "--store", f"chroma://{tmp_path}/chroma", "-f", "updated_after=2024-01-01"]
    )
    assert result.exit_code == 1 and "Index only" in result.output


def test_missing_extra_names_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "chromadb", None)  # as if chromadb were not installed
    monkeypatch.delitem(sys.modules, "winnow.stores.chroma")
    with pytest.raises(MissingExtraError, match=r"pip install 'winnow\[chroma\]'") as caught:
        import winnow.stores.chroma  # noqa: F401
    assert isinstance(caught.value, WinnowError)


def test_readme_stores_example(tmp_path: Path) -> None:
    lines = run_readme_example("stores", tmp_path)
    assert len(lines) == 1 and lines[0].startswith("tls.md net ")
