"""BEIR data on disk, read in one place: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``.

Indexing a BEIR corpus, evaluation and training read the same files; one reader gives them one answer
to "what text does this document have" (``title_and_text``) and one set of errors, each naming the file
and the line, raised as the caller's own error type. Reading is strict: a benchmark that silently lost
a document or a judgement would report wrong numbers. Qrels may also be TREC's four columns and queries
MS MARCO's two-column TSV.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from winnow.jsonl import iter_json_objects
from winnow.records import Document, title_and_text

Qrels = dict[str, dict[str, int]]


def require_file(path: Path, error: type[Exception] = ValueError) -> Path:
    if not path.is_file():
        raise error(f"missing file: {path} (expected it in the data set folder)")
    return path


def numbered_lines(path: Path, error: type[Exception] = ValueError) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based number; CRLF endings (as in BEIR SciFact qrels) are stripped."""
    with open(require_file(path, error), encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if line.strip():
                yield number, line


def required_field(record: dict[str, Any], names: tuple[str, ...], where: str, error: type[Exception]) -> str:
    for name in names:
        if record.get(name) is not None:
            return str(record[name])
    raise error(f"{where}: missing field {' or '.join(repr(n) for n in names)}")


def iter_corpus(path: Path, error: type[Exception] = ValueError) -> Iterator[Document]:
    """The documents of a corpus jsonl (``_id`` or ``id``, ``text``, optional ``title`` and ``metadata``).

    A record without an id or a text, or an id seen before, raises ``error`` naming the line.
    """
    first_line: dict[str, int] = {}
    for number, record in iter_json_objects(require_file(path, error), error):
        where = f"{path}:{number}"
        doc_id = required_field(record, ("_id", "id"), where, error)
        if doc_id in first_line:
            raise error(f"{where}: duplicate document id {doc_id!r} (first on line {first_line[doc_id]})")
        first_line[doc_id] = number
        metadata = record.get("metadata")
        try:
            document = Document(
                id=doc_id,
                text=required_field(record, ("text",), where, error),
                title=str(record.get("title") or ""),
                source=str(path),
                metadata=dict(metadata) if isinstance(metadata, dict) else {},
            )
        except ValueError as exc:  # an empty id
            raise error(f"{where}: {exc}") from None
        yield document


def read_corpus(path: Path, error: type[Exception] = ValueError) -> dict[str, str]:
    """A corpus as id -> the text a model reads: the title, a space, the text (BEIR's convention)."""
    return {doc.id: title_and_text(doc.title, doc.text) for doc in iter_corpus(path, error)}


def read_queries(path: Path, error: type[Exception] = ValueError) -> dict[str, str]:
    """Queries from BEIR queries.jsonl (``_id``, ``text``) or a two-column TSV (id, text; MS MARCO style)."""
    queries: dict[str, str] = {}
    if path.suffix in (".tsv", ".txt"):
        for number, line in numbered_lines(path, error):
            parts = line.split("\t")
            if len(parts) != 2:
                raise error(f"{path}:{number}: expected 2 tab-separated columns (id, text), got {len(parts)}")
            queries[parts[0]] = parts[1]
        return queries
    for number, record in iter_json_objects(require_file(path, error), error):
        where = f"{path}:{number}"
        query_id = required_field(record, ("_id", "id"), where, error)
        if query_id in queries:
            raise error(f"{where}: duplicate query id {query_id!r}")
        queries[query_id] = required_field(record, ("text",), where, error)
    return queries


def read_qrels(path: Path, error: type[Exception] = ValueError) -> Qrels:
    """Relevance judgments from a BEIR qrels TSV (header, 3 columns) or a TREC qrels file (4 columns).

    Grades are kept as given (0 included); what counts as relevant is the reader's decision.
    """
    qrels: Qrels = {}
    for number, line in numbered_lines(path, error):
        parts = line.split()
        if len(parts) == 3:
            query_id, doc_id, grade = parts
        elif len(parts) == 4:
            query_id, _, doc_id, grade = parts
        else:
            raise error(
                f"{path}:{number}: expected 'query-id corpus-id score' (BEIR) or "
                f"'query-id 0 doc-id grade' (TREC), got {len(parts)} columns"
            )
        try:
            value = int(grade)
        except ValueError:
            if number == 1:  # BEIR header: query-id corpus-id score
                continue
            raise error(f"{path}:{number}: relevance grade {grade!r} is not an integer") from None
        qrels.setdefault(query_id, {})[doc_id] = value
    if not qrels:
        raise error(f"{path}: holds no relevance judgments")
    return qrels
