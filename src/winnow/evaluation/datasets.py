"""Load evaluation sets: BEIR folders, TREC run + qrels reranking sets, and the simple user jsonl format.

Every loader returns an ``EvalSet``. Problems in the data that do not stop evaluation (qrels naming
documents or queries that do not exist) are counted in ``EvalSet.issues`` and reported, never dropped
silently; problems that would make numbers wrong (a missing file, a malformed line, a duplicate id)
raise ``DatasetError`` naming the file, the line and the field.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from winnow.errors import WinnowError
from winnow.jsonl import iter_json_objects
from winnow.retrieve.beir import (
    Qrels,
    numbered_lines,
    read_corpus,
    read_qrels,
    read_queries,
    require_file,
    required_field,
)

Candidates = dict[str, list[tuple[str, float]]]

SHORT_NAMES: dict[str, str] = {
    "scifact": "beir/scifact",
    "nfcorpus": "beir/nfcorpus",
    "dl19": "msmarco_trec_dl/dl19_bm25_top100",
}
DL19_RUN = "msmarco_trec_dl/original/rank_llm.BM25.trec_results_dl19.txt"
# TREC DL counts grade >= 2 as relevant for binary metrics (MRR, Recall, Precision, MAP).
DEFAULT_THRESHOLDS: dict[str, int] = {"dl19": 2}


class DatasetError(WinnowError, ValueError):
    """An evaluation data set is missing a file or holds a line that cannot be read."""


@dataclass
class EvalSet:
    """Queries, their relevance judgments, the documents, and (for reranking sets) supplied candidates.

    ``corpus`` maps a document id to the text a reranker scores. ``candidates`` is None for retrieval
    sets (stage 1 runs over the corpus) and holds the supplied ranked lists for reranking sets.
    ``issues`` counts what was wrong with the data but did not stop evaluation.
    """

    name: str
    queries: dict[str, str]
    qrels: Qrels
    corpus: dict[str, str]
    candidates: Candidates | None = None
    issues: dict[str, Any] = field(default_factory=dict)
    relevance_threshold: int = 1
    source: str = ""

    @property
    def graded(self) -> bool:
        """True when the judgments use more than one positive grade (nDCG then uses the grades)."""
        return max((g for docs in self.qrels.values() for g in docs.values()), default=0) > 1


def load_run(path: Path) -> Candidates:
    """A TREC run file (``qid Q0 docid rank score tag``) as query id -> [(doc id, score)] in rank order."""
    ranked: dict[str, list[tuple[int, str, float]]] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, line in numbered_lines(path, DatasetError):
        parts = line.split()
        if len(parts) != 6:
            raise DatasetError(
                f"{path}:{number}: expected 6 columns 'qid Q0 docid rank score tag', got {len(parts)}"
            )
        query_id, _, doc_id, rank, score, _ = parts
        try:
            entry = (int(rank), doc_id, float(score))
        except ValueError:
            raise DatasetError(f"{path}:{number}: rank {rank!r} or score {score!r} is not a number") from None
        if (query_id, doc_id) in seen:
            raise DatasetError(
                f"{path}:{number}: document {doc_id!r} listed twice for query {query_id!r} "
                f"(first on line {seen[query_id, doc_id]})"
            )
        seen[query_id, doc_id] = number
        ranked.setdefault(query_id, []).append(entry)
    return {qid: [(doc, score) for _, doc, score in sorted(rows)] for qid, rows in ranked.items()}


def _check(
    name: str, queries: dict[str, str], qrels: Qrels, corpus: dict[str, str]
) -> tuple[dict, dict, Qrels]:
    """Keep judged queries that have text; count (not drop silently) qrels naming unknown ids."""
    issues: dict[str, Any] = {}
    unknown_queries = sorted(q for q in qrels if q not in queries)
    if unknown_queries:
        issues["unknown_queries"] = {
            "count": len(unknown_queries),
            "judgments": sum(len(qrels[q]) for q in unknown_queries),
            "examples": unknown_queries[:5],
            "effect": "not evaluated: the qrels judge them but queries file has no text for them",
        }
    unknown_docs = sorted({d for docs in qrels.values() for d in docs if d not in corpus})
    if unknown_docs:
        issues["unknown_documents"] = {
            "count": len(unknown_docs),
            "examples": unknown_docs[:5],
            "effect": "kept in the qrels: they count as relevant documents no system can retrieve",
        }
    judged = {q: qrels[q] for q in qrels if q in queries}
    if not judged:
        raise DatasetError(f"{name}: no query in the qrels has a text in the queries file")
    return issues, {q: queries[q] for q in judged}, judged


def load_beir(folder: str | os.PathLike[str], split: str = "test", name: str | None = None) -> EvalSet:
    """A BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"data set folder not found: {folder}")
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv", DatasetError)
    queries = read_queries(folder / "queries.jsonl", DatasetError)
    corpus = read_corpus(folder / "corpus.jsonl", DatasetError)
    issues, queries, qrels = _check(str(folder), queries, qrels, corpus)
    return EvalSet(name or folder.name, queries, qrels, corpus, issues=issues, source=str(folder))


def load_rerank_set(
    run: str | os.PathLike[str],
    qrels: str | os.PathLike[str],
    queries: str | os.PathLike[str],
    corpus: str | os.PathLike[str],
    name: str | None = None,
) -> EvalSet:
    """A reranking set: a TREC run file of candidates, its qrels, and the text of queries and passages.

    Candidates whose text is missing from the corpus stop loading (a reranker cannot score them);
    queries with candidates but no judgments, or judgments but no candidates, are counted in issues.
    """
    run_path = Path(run)
    evalset_name = name or run_path.stem
    candidates = load_run(run_path)
    loaded_qrels = read_qrels(Path(qrels), DatasetError)
    texts = read_corpus(Path(corpus), DatasetError)
    queries_read = read_queries(Path(queries), DatasetError)
    issues, judged_queries, judged = _check(evalset_name, queries_read, loaded_qrels, texts)
    missing_text = sorted({d for docs in candidates.values() for d, _ in docs if d not in texts})
    if missing_text:
        raise DatasetError(
            f"{run_path}: {len(missing_text)} candidate documents have no text in {corpus} "
            f"(e.g. {', '.join(missing_text[:3])}), so they cannot be reranked"
        )
    unjudged = sorted(q for q in candidates if q not in judged)
    if unjudged:
        issues["unjudged_run_queries"] = {
            "count": len(unjudged),
            "examples": unjudged[:5],
            "effect": "not evaluated: the run ranks them but the qrels do not judge them",
        }
    no_candidates = sorted(q for q in judged if q not in candidates)
    if no_candidates:
        issues["queries_without_candidates"] = {
            "count": len(no_candidates),
            "examples": no_candidates[:5],
            "effect": "evaluated with an empty ranking (they score 0)",
        }
    kept = {q: candidates.get(q, []) for q in judged}
    return EvalSet(evalset_name, judged_queries, judged, texts, kept, issues, source=str(run_path))


def load_user_set(
    path: str | os.PathLike[str], corpus: str | os.PathLike[str], name: str | None = None
) -> EvalSet:
    """The simple user format: one JSON object a line, ``{"query": ..., "relevant": [doc ids]}``.

    ``id`` is optional (default ``q<line number>``); ``relevant`` may also map doc id -> grade for
    graded judgments. ``corpus`` is a jsonl of ``{"id", "text"}`` (``_id`` and ``title`` also accepted).
    """
    path = Path(path)
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    for number, record in iter_json_objects(require_file(path, DatasetError), DatasetError):
        query_id = str(record.get("id", f"q{number}"))
        if query_id in queries:
            raise DatasetError(f"{path}:{number}: duplicate query id {query_id!r}")
        queries[query_id] = required_field(record, ("query",), f"{path}:{number}", DatasetError)
        relevant = record.get("relevant")
        if isinstance(relevant, list) and relevant:
            qrels[query_id] = {str(doc): 1 for doc in relevant}
        elif isinstance(relevant, dict) and relevant:
            try:
                qrels[query_id] = {str(doc): int(grade) for doc, grade in relevant.items()}
            except (TypeError, ValueError):
                raise DatasetError(f"{path}:{number}: field 'relevant' grades must be integers") from None
        else:
            raise DatasetError(
                f"{path}:{number}: field 'relevant' must be a non-empty list of document ids "
                f"or an object mapping document id to grade"
            )
    texts = read_corpus(Path(corpus), DatasetError)
    issues, queries, qrels = _check(str(path), queries, qrels, texts)
    return EvalSet(name or path.stem, queries, qrels, texts, issues=issues, source=str(path))


def shared_data_dir() -> Path:
    """Where the public sets live: $WINNOW_DATA_DIR, else ../shared/data from here or from the repository."""
    if os.environ.get("WINNOW_DATA_DIR"):
        return Path(os.environ["WINNOW_DATA_DIR"])
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        candidate = base.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path.cwd().parent / "shared" / "data"


def load_dataset(
    dataset: str | os.PathLike[str],
    split: str = "test",
    run: str | os.PathLike[str] | None = None,
    corpus: str | os.PathLike[str] | None = None,
) -> EvalSet:
    """Resolve what a user typed: a short name (scifact, nfcorpus, dl19), a BEIR folder or a user .jsonl file.

    With ``run`` a BEIR folder becomes a reranking set over that run's candidates.
    """
    text = os.fspath(dataset)
    short = text.lower()
    if short in SHORT_NAMES and not Path(text).exists():
        folder = shared_data_dir() / SHORT_NAMES[short]
        if short == "dl19" and run is None:
            run = shared_data_dir() / DL19_RUN
        evalset = _load_folder(folder, split, run, short)
        evalset.relevance_threshold = DEFAULT_THRESHOLDS.get(short, 1)
        return evalset
    path = Path(text)
    if path.is_file():
        if corpus is None:
            raise DatasetError(f"{path}: a query file needs --corpus, the jsonl of documents it refers to")
        return load_user_set(path, corpus)
    if path.is_dir():
        return _load_folder(path, split, run, path.name)
    known = ", ".join(SHORT_NAMES)
    raise DatasetError(f"data set {text!r} not found: not a file, not a folder, not a short name ({known})")


def _load_folder(folder: Path, split: str, run: str | os.PathLike[str] | None, name: str) -> EvalSet:
    if run is None:
        return load_beir(folder, split, name)
    if not folder.is_dir():
        raise DatasetError(f"data set folder not found: {folder}")
    return load_rerank_set(
        run, folder / "qrels" / f"{split}.tsv", folder / "queries.jsonl", folder / "corpus.jsonl", name
    )
