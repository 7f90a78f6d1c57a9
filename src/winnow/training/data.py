"""Read training data: labelled pairs, grouped (query, positives, negatives) jsonl, and BEIR qrels.

Everything becomes a ``Group`` (one query, its positive passages, its negative passages), because every
loss trains on one query's candidates at a time. Bad lines fail loudly with file and line number; queries
that cannot be trained on (no positive) are skipped and counted, never silently dropped.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from winnow.jsonl import iter_json_objects


class TrainingDataError(ValueError):
    """A training file is malformed; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Group:
    """One training query with its known positive and negative passages."""

    qid: str
    query: str
    positives: tuple[str, ...]
    negatives: tuple[str, ...] = ()


@dataclass(slots=True)
class LoadReport:
    """What a reader kept and what it skipped, so users see why their query count shrank."""

    source: str
    groups: int = 0
    skipped_no_positive: int = 0
    skipped_no_negative: int = 0
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.source}: {self.groups} queries"
        if self.skipped_no_positive:
            text += f", {self.skipped_no_positive} skipped (no positive)"
        if self.skipped_no_negative:
            text += f", {self.skipped_no_negative} skipped (no negative)"
        return text


def _field(row: dict[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in row:
        raise TrainingDataError(f"{where}: missing field {name!r}")
    value = row[name]
    if kind is str and not isinstance(value, str):
        raise TrainingDataError(f"{where}: field {name!r} must be a string, got {type(value).__name__}")
    if kind is list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
        raise TrainingDataError(f"{where}: field {name!r} must be a list of strings")
    return value


def _label(row: dict[str, Any], where: str) -> float:
    value = _field(row, "label", float, where)
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise TrainingDataError(f"{where}: field 'label' must be a number from 0 to 1, got {value!r}")
    return float(value)


def _rows(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """Parse a jsonl file into (``file:line``, object) pairs; blank lines are allowed."""
    if not path.is_file():
        raise FileNotFoundError(f"training file not found: {path}")
    return [(f"{path}:{number}", row) for number, row in iter_json_objects(path, TrainingDataError)]


def read_jsonl(path: str | Path, require_negatives: bool = False) -> tuple[list[Group], LoadReport]:
    """Read a pairs file (``query, passage, label``) or a grouped file (``query, positives, negatives``).

    The layout is chosen per line by its fields, so one file may mix both. Pairs are grouped by ``qid``
    (or by query text when there is no qid). A label counts as positive when it is >= 0.5.
    """
    path = Path(path)
    report = LoadReport(source=str(path))
    queries: dict[str, str] = {}
    positives: dict[str, list[str]] = defaultdict(list)
    negatives: dict[str, list[str]] = defaultdict(list)
    for where, row in _rows(path):
        query = _field(row, "query", str, where)
        qid = str(row.get("qid", query))
        if queries.setdefault(qid, query) != query:
            raise TrainingDataError(f"{where}: qid {qid!r} was used before with a different query text")
        if "positives" in row or "negatives" in row:
            positives[qid].extend(_field(row, "positives", list, where))
            if "negatives" in row:
                negatives[qid].extend(_field(row, "negatives", list, where))
        elif "passage" in row:
            passage = _field(row, "passage", str, where)
            (positives if _label(row, where) >= 0.5 else negatives)[qid].append(passage)
        else:
            raise TrainingDataError(
                f"{where}: a line needs either 'passage' and 'label' (pairs) or 'positives' (grouped)"
            )
    groups = []
    for qid, query in queries.items():
        if not positives[qid]:
            report.skipped_no_positive += 1
        elif require_negatives and not negatives[qid]:
            report.skipped_no_negative += 1
        else:
            groups.append(Group(qid, query, tuple(positives[qid]), tuple(negatives[qid])))
    report.groups = len(groups)
    return groups, report


@dataclass(frozen=True, slots=True)
class BeirSplit:
    """A BEIR folder's corpus (id -> text), queries (id -> text) and one split's graded qrels."""

    corpus: dict[str, str]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def document_text(row: dict[str, Any]) -> str:
    """The text a cross-encoder sees for a BEIR document: ``title`` then ``text``, as BEIR rerankers do."""
    title = (row.get("title") or "").strip()
    text = (row.get("text") or "").strip()
    return f"{title} {text}" if title else text


def read_beir(folder: str | Path, split: str) -> BeirSplit:
    """Load a BEIR dataset folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).

    Qrels may have CRLF line endings (SciFact does) and a header line; both are handled. Judged documents
    missing from the corpus are kept in ``qrels`` (they still count for evaluation, as in TREC DL).
    """
    folder = Path(folder)
    corpus = {}
    for where, row in _rows(folder / "corpus.jsonl"):
        corpus[str(_field(row, "_id", object, where))] = document_text(row)
    queries = {}
    for where, row in _rows(folder / "queries.jsonl"):
        queries[str(_field(row, "_id", object, where))] = _field(row, "text", str, where)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    if not qrels_path.is_file():
        raise FileNotFoundError(f"qrels not found: {qrels_path}")
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    with qrels_path.open(encoding="utf-8", newline=None) as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\r\n").split("\t")
            if number == 1 and parts[0] == "query-id":
                continue
            if not line.strip():
                continue
            where = f"{qrels_path}:{number}"
            if len(parts) != 3:
                raise TrainingDataError(f"{where}: expected 3 tab-separated fields, got {len(parts)}")
            qid, doc_id, grade = parts
            try:
                qrels[qid][doc_id] = int(grade)
            except ValueError:
                raise TrainingDataError(
                    f"{where}: relevance grade must be an integer, got {grade!r}"
                ) from None
            if qid not in queries:
                raise TrainingDataError(f"{where}: query {qid!r} is not in {folder / 'queries.jsonl'}")
    return BeirSplit(corpus, queries, dict(qrels))
