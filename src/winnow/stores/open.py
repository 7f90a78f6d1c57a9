"""``winnow search --store``: open any supported vector database from one URI or a small YAML file.

URIs (query parameters: ``collection``/``table``/``namespace``, plus ``model``, ``chunk_tokens``):

    chroma:///abs/path/to/folder?collection=winnow      embedded Chroma (relative: chroma://path)
    milvus:///abs/path/chunks.db?collection=winnow      Milvus Lite (milvus+http://host:19530 for a server)
    qdrant:///abs/path/to/folder?collection=winnow      embedded Qdrant (qdrant+http://host:6333 for a server)
    postgresql://user@host:5432/db?table=winnow_chunks  PostgreSQL + pgvector
    pinecone://INDEX-HOST?namespace=docs                Pinecone (key from PINECONE_API_KEY)

A ``.yaml``/``.yml`` file holds ``uri:`` and, optionally, the same settings as keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from winnow.errors import WinnowError
from winnow.stores.base import CandidateSource

SCHEMES = (
    "chroma",
    "milvus",
    "milvus+http",
    "milvus+https",
    "qdrant",
    "qdrant+http",
    "qdrant+https",
    "postgresql",
    "postgres",
    "pinecone",
    "pinecone+http",
)
_SETTINGS = {
    "model": "embedding_model",
    "embedding_model": "embedding_model",
    "chunk_tokens": "chunk_tokens",
    "chunk_overlap": "chunk_overlap",
}


def _store_settings(options: dict[str, Any]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, value in options.items():
        if key not in _SETTINGS:
            continue
        name = _SETTINGS[key]
        if name in ("chunk_tokens", "chunk_overlap"):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise WinnowError(f"store setting {key}={value!r} must be a whole number") from None
            value = None if name == "chunk_tokens" and value == 0 else value
        settings[name] = value
    return settings


def _read_config(path: Path) -> tuple[str, dict[str, Any]]:
    import yaml

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise WinnowError(f"cannot read store config {path}: {exc}") from exc
    if not isinstance(config, dict) or not isinstance(config.get("uri"), str):
        raise WinnowError(f"store config {path} must be a mapping with a `uri:` string")
    options = {key: value for key, value in config.items() if key != "uri"}
    return config["uri"], options


def _local_path(parts: Any, create: bool) -> str:
    """``scheme:///abs/path`` → ``/abs/path``; ``scheme://rel/path`` → ``rel/path``; it must exist
    unless ``create``, so a mistyped path is an error instead of a new, empty database."""
    path = f"{parts.netloc}{parts.path}"
    if not path:
        raise WinnowError(f"store URI {urlunsplit(parts)!r} names no folder or file")
    if not create and not Path(path).exists():
        raise WinnowError(f"no {parts.scheme} database at {path} (store URI {urlunsplit(parts)!r})")
    return path


def open_store(spec: str, create: bool = False) -> CandidateSource:
    """The store a URI (or a YAML file holding one) names; a one-line WinnowError for anything wrong.

    A local database (Chroma, Milvus Lite, embedded Qdrant) must already exist unless ``create``.
    """
    options: dict[str, Any] = {}
    if spec.endswith((".yaml", ".yml")) and "://" not in spec:
        spec, options = _read_config(Path(spec))
    parts = urlsplit(spec)
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise WinnowError(
            f"unknown store {spec!r}: use chroma://, milvus://, qdrant://, postgresql:// or pinecone:// "
            "(or a .yaml file with uri:)"
        )
    query = dict(parse_qsl(parts.query))
    options = {**query, **options}
    settings = _store_settings(options)
    name = str(options.get("collection", "winnow"))
    if scheme == "chroma":
        from winnow.stores.chroma import ChromaStore

        return ChromaStore.open(_local_path(parts, create), name, **settings)
    if scheme.startswith("milvus"):
        from winnow.stores.milvus import MilvusStore

        uri = (
            _local_path(parts, create)
            if scheme == "milvus"
            else urlunsplit((scheme[7:], parts.netloc, "", "", ""))
        )
        return MilvusStore.open(uri, name, **settings)
    if scheme.startswith("qdrant"):
        from winnow.extras import require_extra

        with require_extra("qdrant-client", "qdrant"):
            from qdrant_client import QdrantClient

        from winnow.stores.qdrant import QdrantStore

        if scheme == "qdrant":
            client = QdrantClient(path=_local_path(parts, create))
        else:
            client = QdrantClient(url=urlunsplit((scheme[7:], parts.netloc, "", "", "")))
        return QdrantStore(client, name, **settings)
    if scheme in ("postgresql", "postgres"):
        from winnow.stores.pgvector import PgVectorStore

        rest = "&".join(f"{k}={v}" for k, v in query.items() if k not in (*_SETTINGS, "table"))
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
        return PgVectorStore.open(dsn, str(options.get("table", "winnow_chunks")), **settings)
    from winnow.stores.pinecone import PineconeStore

    base = urlunsplit(("http" if scheme == "pinecone+http" else "https", parts.netloc, "", "", ""))
    return PineconeStore(base, options.get("api_key"), str(options.get("namespace", "")), **settings)
