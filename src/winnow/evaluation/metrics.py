"""Retrieval metrics through ranx: names, the relevance threshold, and per-query scores.

No metric is computed here; this module only turns Winnow's rankings into ranx's inputs and back.
nDCG uses the graded judgments with linear gain (ranx's "jarvelin", the same as trec_eval's
ndcg_cut), so TREC DL 2019's supplied BM25 order scores 0.5058 as published. Binary metrics count a
document as relevant when its grade reaches ``relevance_threshold`` (TREC DL uses 2).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from winnow.evaluation.datasets import Qrels

# The default metrics, by display name. Any "<family>@k" of the families below (and MAP) is accepted.
METRICS: tuple[str, ...] = (
    "nDCG@1",
    "nDCG@3",
    "nDCG@5",
    "nDCG@10",
    "MRR@10",
    "Recall@5",
    "Recall@10",
    "Recall@20",
    "Recall@50",
    "Recall@100",
    "P@5",
    "MAP",
)
FAMILIES = {"nDCG": "ndcg", "MRR": "mrr", "Recall": "recall", "P": "precision", "MAP": "map"}
GRADED = ("ndcg",)

Ranking = Sequence[tuple[str, float]] | Sequence[str]


class NoOverlapWarning(UserWarning):
    """A run shares no judged document with the qrels, so its scores are zeros that mean nothing."""


@dataclass
class Evaluation:
    """Mean and per-query values of each metric, and whether the run overlaps the qrels at all."""

    mean: dict[str, float]
    per_query: dict[str, dict[str, float]]
    judged_retrieved: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """False when the run retrieved no judged document: its zeros must not be read as a result."""
        return self.judged_retrieved > 0

    def per_query_metric(self, metric: str) -> dict[str, float]:
        """Query id -> value of one metric (the input of paired tests and win/loss charts)."""
        return {query_id: values[metric] for query_id, values in self.per_query.items()}


def ranx_name(metric: str, relevance_threshold: int = 1) -> str:
    """The ranx name of a display metric, with ranx's ``-l<k>`` relevance level for binary metrics."""
    family, _, cutoff = metric.partition("@")
    if family not in FAMILIES or (cutoff and not cutoff.isdigit()) or (family != "MAP" and not cutoff):
        raise ValueError(
            f"unknown metric {metric!r}; use nDCG@k, MRR@k, Recall@k, P@k or MAP (e.g. {METRICS[3]})"
        )
    name = FAMILIES[family] + (f"@{cutoff}" if cutoff else "")
    if relevance_threshold > 1 and not name.startswith(GRADED):
        name += f"-l{relevance_threshold}"
    return name


def _doc_ids(ranking: Ranking) -> list[str]:
    return [item if isinstance(item, str) else item[0] for item in ranking]


def evaluate(
    qrels: Qrels,
    run: Mapping[str, Ranking],
    metrics: Sequence[str] = METRICS,
    relevance_threshold: int = 1,
) -> Evaluation:
    """Score ``run`` (query id -> doc ids best first, or (doc id, score) pairs) against ``qrels``.

    The order given is the order evaluated (ties in scores cannot reorder it). Queries judged in the
    qrels but absent from the run score 0, as trec_eval -c does. Warns with ``NoOverlapWarning`` when
    no retrieved document is judged, so a table of zeros is never mistaken for a result.
    """
    import ranx

    judged_qrels = {q: docs for q, docs in qrels.items() if docs}
    ordered = {q: _doc_ids(run[q]) for q in judged_qrels if q in run and len(run[q]) > 0}
    judged_retrieved = sum(1 for q, docs in ordered.items() for d in docs if d in judged_qrels[q])
    messages = []
    if not ordered:
        messages.append(
            f"the run ranks none of the {len(judged_qrels)} judged queries: query ids do not match the qrels"
        )
    elif judged_retrieved == 0:
        messages.append(
            "the run shares no document with the qrels (no retrieved document is judged): "
            "document ids probably do not match; every metric would be 0"
        )
    for message in messages:
        warnings.warn(message, NoOverlapWarning, stacklevel=2)
    names = {metric: ranx_name(metric, relevance_threshold) for metric in metrics}
    if not ordered:
        zeros = {q: dict.fromkeys(metrics, 0.0) for q in judged_qrels}
        return Evaluation(dict.fromkeys(metrics, 0.0), zeros, 0, messages)
    # Strictly decreasing pseudo-scores keep the given order exactly.
    scores = {q: {d: float(len(docs) - i) for i, d in enumerate(docs)} for q, docs in ordered.items()}
    ranx_qrels = ranx.Qrels.from_dict(judged_qrels)
    ranx_run = ranx.Run.from_dict(scores)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module="numba")
        warnings.filterwarnings("ignore", message=".*unsafe cast.*")
        means = ranx.evaluate(ranx_qrels, ranx_run, list(names.values()), make_comparable=True)
    if len(names) == 1:  # ranx returns a bare number for a single metric
        means = {next(iter(names.values())): means}
    per_query = {
        q: {metric: float(ranx_run.scores[name].get(q, 0.0)) for metric, name in names.items()}
        for q in judged_qrels
    }
    mean = {metric: float(means[name]) for metric, name in names.items()}
    return Evaluation(mean, per_query, judged_retrieved, messages)
