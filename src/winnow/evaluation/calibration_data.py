"""Labelled (logit, label) data for calibration, from the evaluation formats.

Two sources: a BEIR folder + split (stage-1 BM25 top-k candidates of each judged query, scored by the
cross-encoder, labelled by the qrels), or a pairs jsonl (``query``, ``passage``, ``label``). Scores go
through the evaluation score cache, so fitting again (or another method) does not rescore.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from winnow.evaluation.corpus_index import bm25_candidates
from winnow.evaluation.scorers import Scorer
from winnow.jsonl import iter_json_objects


@dataclass(slots=True)
class LabelledScores:
    """Per query: its candidates' logits and 0/1 labels, in stage-1 order."""

    query_ids: list[str] = field(default_factory=list)
    logits: list[np.ndarray] = field(default_factory=list)
    labels: list[np.ndarray] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def add(self, query_id: str, logits: np.ndarray, labels: np.ndarray) -> None:
        self.query_ids.append(query_id)
        self.logits.append(np.asarray(logits, dtype=np.float64))
        self.labels.append(np.asarray(labels, dtype=np.float64))

    def flat(self) -> tuple[np.ndarray, np.ndarray]:
        """Every (logit, label) pair, for fitting a calibrator and measuring ECE."""
        if not self.logits:
            return np.zeros(0), np.zeros(0)
        return np.concatenate(self.logits), np.concatenate(self.labels)

    def best(self) -> tuple[np.ndarray, np.ndarray]:
        """Per query: its best candidate's logit and whether that candidate is relevant
        (what an abstention threshold decides on)."""
        tops = [int(np.argmax(values)) for values in self.logits]
        logits = np.array([values[i] for values, i in zip(self.logits, tops, strict=True)])
        relevant = np.array([labels[i] for labels, i in zip(self.labels, tops, strict=True)])
        return logits, relevant


def score_queries(
    queries: dict[str, str],
    search,
    scorer: Scorer,
    k: int,
    qrels: dict[str, dict[str, int]] | None = None,
    relevance_threshold: int = 1,
    progress: bool = True,
) -> LabelledScores:
    """Score each query's top-k candidates; labels from ``qrels`` (all 0 without: out-of-domain
    queries). Queries stage 1 finds nothing for are counted in ``skipped``, not scored."""
    out = LabelledScores()
    for query_id, query in tqdm(queries.items(), desc="scoring", unit="query", disable=not progress):
        hits = search(query, k)
        if not hits:
            out.skipped["no_candidates"] = out.skipped.get("no_candidates", 0) + 1
            continue
        judged = (qrels or {}).get(query_id, {})
        labels = np.array([judged.get(doc_id, 0) >= relevance_threshold for doc_id, _ in hits], dtype=float)
        out.add(query_id, scorer.score(query, [text for _, text in hits]), labels)
    return out


def beir_scores(
    folder: str | os.PathLike[str],
    split: str,
    scorer: Scorer,
    k: int = 10,
    max_queries: int | None = None,
    progress: bool = True,
) -> LabelledScores:
    """A BEIR folder's judged queries of ``split``, their BM25 top-k scored and labelled by the qrels."""
    from winnow.evaluation.datasets import load_dataset

    evalset = load_dataset(folder, split=split)
    queries = dict(list(evalset.queries.items())[:max_queries])
    search = bm25_candidates(evalset.corpus)
    return score_queries(queries, search, scorer, k, evalset.qrels, evalset.relevance_threshold, progress)


def pairs_scores(path: str | os.PathLike[str], scorer: Scorer, progress: bool = True) -> LabelledScores:
    """A jsonl of ``{"query", "passage", "label"}`` lines (label 0/1, or a grade: > 0 is relevant),
    grouped by ``qid`` or by query text."""
    path = Path(path)
    grouped: dict[str, tuple[str, list[str], list[float]]] = {}
    if not path.is_file():
        raise FileNotFoundError(f"pairs file not found: {path}")
    for number, row in iter_json_objects(path):
        where = f"{path}:{number}"
        for name in ("query", "passage"):
            if not isinstance(row.get(name), str) or not row[name].strip():
                raise ValueError(f"{where}: field {name!r} must be a non-empty string")
        label = row.get("label")
        if isinstance(label, bool) or not isinstance(label, int | float) or label < 0:
            raise ValueError(f"{where}: field 'label' must be 0/1 or a non-negative grade, got {label!r}")
        query_id = str(row.get("qid", row["query"]))
        entry = grouped.setdefault(query_id, (row["query"], [], []))
        entry[1].append(row["passage"])
        entry[2].append(1.0 if label > 0 else 0.0)
    if not grouped:
        raise ValueError(f"{path}: holds no labelled pairs")
    out = LabelledScores()
    for query_id, (query, passages, labels) in tqdm(
        grouped.items(), desc="scoring", unit="query", disable=not progress
    ):
        out.add(query_id, scorer.score(query, passages), np.array(labels))
    return out


def read_questions(path: str | os.PathLike[str]) -> dict[str, str]:
    """One question a line (blank lines and ``#`` comments skipped), as id ``ood-<line>`` -> text."""
    questions: dict[str, str] = {}
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if line.strip() and not line.lstrip().startswith("#"):
            questions[f"ood-{number}"] = line.strip()
    if not questions:
        raise ValueError(f"{path}: holds no questions")
    return questions


def scorer_for(model: str, max_length: int = 512, cache: bool = True) -> Scorer:
    """The cross-encoder's raw logits, behind the on-disk evaluation score cache."""
    from winnow.evaluation.cache import DiskScoreCache
    from winnow.evaluation.scorers import CachedScorer, CrossEncoderScorer

    return CachedScorer(CrossEncoderScorer(model, max_length), DiskScoreCache() if cache else None)
