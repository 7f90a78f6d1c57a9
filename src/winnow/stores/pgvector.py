"""PostgreSQL with the pgvector extension as stage 1: one table of chunks, searched by cosine distance.

``PgVectorStore.open("postgresql://user@host/db", table="winnow_chunks")`` connects with psycopg 3
and creates the extension (if the role may), the table and an HNSW index on first write. The payload
is a ``jsonb`` column, so ``key = value`` filters are a ``payload @> {...}`` containment test inside
the database; filtered HNSW scans use pgvector's iterative scan (0.8+) so k results still come back.
"""

from __future__ import annotations

import json
import re
from typing import Any, Unpack

import numpy as np

from winnow.errors import WinnowError
from winnow.extras import require_extra
from winnow.stores.chunked import ChunkedStore, ChunkRecord, StoreSettings

with require_extra("psycopg", "pgvector"):
    import psycopg
    from psycopg import sql

_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


def _vector(values: np.ndarray) -> str:
    """pgvector's text form, ``[x1,x2,...]``: no client-side adapter package needed."""
    return "[" + ",".join(f"{float(v):.8g}" for v in values) + "]"


class PgVectorStore(ChunkedStore):
    """A PostgreSQL table ``(id, doc_id, payload jsonb, embedding vector(dim))`` with an HNSW cosine index."""

    name = "pgvector"

    def __init__(
        self,
        connection: psycopg.Connection,
        table: str = "winnow_chunks",
        **settings: Unpack[StoreSettings],
    ):
        if not _TABLE.match(table):
            raise ValueError(f"table name {table!r} must be letters, digits and '_' (at most 63)")
        super().__init__(**settings)
        self.connection = connection
        self.table = table
        self._ready = False

    @classmethod
    def open(cls, dsn: str, table: str = "winnow_chunks", **settings: Unpack[StoreSettings]) -> PgVectorStore:
        """Connect to ``dsn`` (``postgresql://user:password@host:port/database``) in autocommit mode."""
        try:
            connection = psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise WinnowError(f"cannot connect to PostgreSQL at {dsn}: {str(exc).strip()}") from exc
        return cls(connection, table, **settings)

    def close(self) -> None:
        self.connection.close()

    def _names(self) -> dict[str, sql.Identifier]:
        return {"table": sql.Identifier(self.table), "index": sql.Identifier(f"{self.table}_embedding_hnsw")}

    def _exists(self) -> bool:
        row = self.connection.execute("SELECT to_regclass(%s) IS NOT NULL", (self.table,)).fetchone()
        return bool(row and row[0])

    def _ensure_table(self) -> None:
        if self._ready:
            return
        with self.connection.transaction():
            has_vector = self.connection.execute(
                "SELECT 1 FROM pg_extension WHERE extname = 'vector'"
            ).fetchone()
            if not has_vector:
                self.connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            statements = (
                "CREATE TABLE IF NOT EXISTS {table} (id text PRIMARY KEY, doc_id text NOT NULL, "
                f"payload jsonb NOT NULL, embedding vector({int(self.embedder.dim)}) NOT NULL)",
                "CREATE INDEX IF NOT EXISTS {index} ON {table} USING hnsw (embedding vector_cosine_ops)",
            )
            for statement in statements:
                self.connection.execute(sql.SQL(statement).format(**self._names()))
        self._ready = True

    def _write(self, records: list[ChunkRecord], vectors: np.ndarray) -> None:
        self._ensure_table()
        query = sql.SQL(
            "INSERT INTO {table} (id, doc_id, payload, embedding) VALUES (%s, %s, %s::jsonb, %s::vector) "
            "ON CONFLICT (id) DO UPDATE SET doc_id = EXCLUDED.doc_id, payload = EXCLUDED.payload, "
            "embedding = EXCLUDED.embedding"
        ).format(**self._names())
        rows = [
            (r.id, r.payload["doc_id"], json.dumps(r.payload, default=str), _vector(v))
            for r, v in zip(records, vectors, strict=True)
        ]
        with self.connection.transaction(), self.connection.cursor() as cursor:
            cursor.executemany(query, rows)

    def _delete(self, doc_ids: list[str]) -> None:
        if self._ready or self._exists():
            self.connection.execute(
                sql.SQL("DELETE FROM {table} WHERE doc_id = ANY(%s)").format(**self._names()), (doc_ids,)
            )

    def _query(
        self, vector: np.ndarray, k: int, filters: dict[str, Any]
    ) -> list[tuple[dict[str, Any], float]]:
        if not (self._ready or self._exists()):
            return []
        query = sql.SQL(
            "SELECT payload, 1 - (embedding <=> %(v)s::vector) FROM {table} "
            "WHERE payload @> %(f)s::jsonb ORDER BY embedding <=> %(v)s::vector LIMIT %(k)s"
        ).format(**self._names())
        with self.connection.transaction():
            # An HNSW scan visits ef_search entries; keep it at least k, and let filtered scans go on
            # (pgvector 0.8 iterative scan; older versions ignore the unknown setting).
            self.connection.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(max(40, k)),))
            self.connection.execute("SELECT set_config('hnsw.iterative_scan', 'strict_order', true)")
            rows = self.connection.execute(
                query, {"v": _vector(vector), "f": json.dumps(filters), "k": k}
            ).fetchall()
        return [(payload, float(score)) for payload, score in rows]
