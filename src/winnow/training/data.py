"""Read training data: labelled pairs, grouped (query, positives, negatives) jsonl, BEIR qrels and PubMedQA.

Everything becomes a ``Group`` (one query, its positive passages, its negative passages), because every
loss trains on one query's candidates at a time. Bad lines fail loudly with file and line number; queries
that cannot be trained on (no positive) are skipped and counted, never silently dropped.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from winnow.errors import WinnowError
from winnow.jsonl import iter_json_objects
from winnow.retrieve.beir import read_corpus, read_qrels, read_queries


class TrainingDataError(WinnowError, ValueError):
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


def read_beir(folder: str | Path, split: str) -> BeirSplit:
    """Load a BEIR dataset folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``).

    Documents are given to the model as ``title text``. Judged documents missing from the corpus are
    kept in ``qrels`` (they still count for evaluation, as in TREC DL); a judged query missing from the
    queries file is an error.
    """
    folder = Path(folder)
    corpus = read_corpus(folder / "corpus.jsonl", TrainingDataError)
    queries = read_queries(folder / "queries.jsonl", TrainingDataError)
    qrels_path = folder / "qrels" / f"{split}.tsv"
    qrels = read_qrels(qrels_path, TrainingDataError)
    unknown = [qid for qid in qrels if qid not in queries]
    if unknown:
        raise TrainingDataError(
            f"{qrels_path}: {len(unknown)} judged queries are not in {folder / 'queries.jsonl'} "
            f"(e.g. {unknown[0]!r})"
        )
    return BeirSplit(corpus, queries, qrels)


PUBMEDQA_SPLITS = ("train", "test")


def read_pubmedqa(folder: str | Path, split: str) -> BeirSplit:
    """PubMedQA's labelled set (``ori_pqal.json``) as a retrieval split: each question's positive is the
    abstract it was written from (its CONTEXTS joined), so it trains a reranker like any BEIR qrels.

    ``split`` is ``test`` (the 500 questions of the official ``test_ground_truth.json``) or ``train`` (the
    other 500). The corpus holds only the split's own abstracts, so training never sees a test abstract,
    even as a negative.
    """
    folder = Path(folder)
    if split not in PUBMEDQA_SPLITS:
        raise TrainingDataError(f"{folder}: PubMedQA splits are {', '.join(PUBMEDQA_SPLITS)}, not {split!r}")
    labelled, test_ids = folder / "ori_pqal.json", folder / "test_ground_truth.json"
    records, test = (_json_object(path) for path in (labelled, test_ids))
    chosen = [pmid for pmid in records if (pmid in test) == (split == "test")]
    corpus, queries = {}, {}
    for pmid in chosen:
        record = records[pmid]
        where = f"{labelled}: question {pmid}"
        if not isinstance(record, dict):
            raise TrainingDataError(f"{where}: must be an object")
        queries[pmid] = _field(record, "QUESTION", str, where)
        corpus[pmid] = " ".join(_field(record, "CONTEXTS", list, where))
    return BeirSplit(corpus, queries, {pmid: {pmid: 1} for pmid in chosen})


def _json_object(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise FileNotFoundError(f"training file not found: {path}")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TrainingDataError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise TrainingDataError(f"{path}: must be a JSON object keyed by PubMed id")
    return value
