"""The grid a user runs to choose a configuration: stage-1 mode × reranking × candidate depth × max_length.

A system under test is simple: per query, stage 1 gives a ranked list of (doc id, score) and,
optionally, a scorer reorders its top ``depth``. Work is shared across the grid so a full SciFact
grid stays affordable on a laptop:

- stage 1 is searched once per query and mode at the largest depth; smaller depths are its prefixes.
  Stage-1 latency is that one search, timed for every query.
- the reranker scores the largest depth once per query (cached on disk by model, query and document);
  the ranking at depth d reorders the first d candidates by those same scores. Because those scores
  may come from the cache, rerank latency is measured separately and honestly: on a sample of queries,
  each depth's candidates are scored afresh (no cache) and timed, after one warm-up call.
- total latency per query = its stage-1 time + its rerank time at that depth, on the sampled queries.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from winnow.evaluation.cache import DiskScoreCache
from winnow.evaluation.corpus_index import Stage1, index_stage1, open_index
from winnow.evaluation.datasets import EvalSet
from winnow.evaluation.metrics import METRICS, Evaluation, NoOverlapWarning, evaluate
from winnow.evaluation.scorers import CachedScorer, Scorer, make_scorer
from winnow.evaluation.significance import PairedTest, paired_test

# "hybrid" is winnow.retrieve's default fusion; "rrf" is hybrid with reciprocal rank fusion (k=60).
STAGE1_MODES = ("bm25", "dense", "hybrid", "rrf")
DEFAULT_MODES = ("bm25", "dense", "hybrid")
SUPPLIED = "supplied"
DEFAULT_DEPTHS = (10, 20, 50, 100)
PRIMARY_METRIC = "nDCG@10"
SIGNIFICANCE_METRICS = ("nDCG@10", "Recall@5", "MRR@10")


@dataclass(frozen=True)
class Config:
    """One cell of the grid."""

    mode: str
    depth: int
    reranker: str | None = None
    max_length: int | None = None

    @property
    def name(self) -> str:
        base = f"{self.mode}@{self.depth}"
        return base if self.reranker is None else f"{base} + rerank({self.max_length})"

    def baseline(self) -> Config:
        """The same stage 1 without reranking."""
        return Config(self.mode, self.depth)


@dataclass
class ConfigResult:
    config: Config
    evaluation: Evaluation
    latency_ms: dict[str, dict[str, float | int | None]]


@dataclass
class ExperimentResult:
    """Everything one `winnow eval` run measured; ``report`` turns it into JSON, Markdown and plots."""

    dataset: dict[str, Any]
    settings: dict[str, Any]
    results: list[ConfigResult]
    significance: list[PairedTest] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0

    def result(self, config: Config) -> ConfigResult:
        for entry in self.results:
            if entry.config == config:
                return entry
        raise KeyError(config.name)

    def best(self, reranked: bool | None = None, metric: str = PRIMARY_METRIC) -> ConfigResult:
        """Highest mean ``metric``; ``reranked`` restricts to configurations with or without reranking."""
        pool = [
            r
            for r in self.results
            if r.evaluation.valid and (reranked is None or (r.config.reranker is not None) == reranked)
        ]
        if not pool:
            raise ValueError("no valid configuration to choose from")
        # Ties go to the cheaper configuration: smaller depth, shorter max_length.
        return max(
            pool, key=lambda r: (r.evaluation.mean[metric], -r.config.depth, -(r.config.max_length or 0))
        )


def _percentiles(seconds: Sequence[float]) -> dict[str, float | int | None]:
    if not seconds:
        return {"p50": None, "p95": None, "n": 0}
    values = np.asarray(seconds) * 1000.0
    return {
        "p50": float(np.percentile(values, 50)),
        "p95": float(np.percentile(values, 95)),
        "n": len(values),
    }


def supplied_stage1(evalset: EvalSet) -> Stage1:
    """Stage 1 read from the data set's candidate lists (reranking sets such as TREC DL 2019)."""
    candidates = evalset.candidates or {}

    def search(query_id: str, query: str, k: int) -> list[tuple[str, float]]:
        return list(candidates.get(query_id, [])[:k])

    return search


def _sample(query_ids: list[str], size: int) -> list[str]:
    """Evenly spread queries (deterministic), so latency is measured on a fixed, varied subset."""
    if size >= len(query_ids):
        return list(query_ids)
    positions = np.linspace(0, len(query_ids) - 1, size).round().astype(int)
    return [query_ids[i] for i in positions]


def run_grid(
    evalset: EvalSet,
    modes: Sequence[str] | None = None,
    depths: Sequence[int] = DEFAULT_DEPTHS,
    reranker: str | None = None,
    max_lengths: Sequence[int] = (512,),
    embedding_model: str = "all-minilm-l6",
    relevance_threshold: int | None = None,
    latency_sample: int = 20,
    metrics: Sequence[str] = METRICS,
    use_cache: bool = True,
    device: str | None = None,
    dtype: str | None = None,
    progress: bool = True,
    scorer_factory: Callable[[str, int], Scorer] | None = None,
) -> ExperimentResult:
    """Evaluate every configuration of the grid on ``evalset``; per-query values and latencies kept.

    ``modes`` (bm25, dense, hybrid, rrf) defaults to bm25, dense and hybrid for retrieval sets and to
    the supplied candidates for reranking sets. ``reranker`` None evaluates stage 1 only; otherwise
    it is a model name or path for a cross-encoder, or ``bi-encoder:<model>``.
    ``scorer_factory(reranker, max_length)`` overrides how scorers are built (tests use it to count calls).
    """
    started = time.perf_counter()
    threshold = evalset.relevance_threshold if relevance_threshold is None else relevance_threshold
    depths = sorted(set(depths))
    if not depths or depths[0] < 1:
        raise ValueError(f"depths must be positive integers, got {list(depths)}")
    if modes is None:
        modes = [SUPPLIED] if evalset.candidates is not None else list(DEFAULT_MODES)
    for mode in modes:
        if mode == SUPPLIED and evalset.candidates is None:
            raise ValueError(
                f"{evalset.name} has no supplied candidates; use modes {', '.join(STAGE1_MODES)}"
            )
        if mode not in (*STAGE1_MODES, SUPPLIED):
            raise ValueError(f"unknown stage-1 mode {mode!r}; use {', '.join(STAGE1_MODES)} or {SUPPLIED}")
    max_depth = depths[-1]
    query_ids = list(evalset.queries)
    sample = _sample(query_ids, latency_sample) if reranker else []
    lengths = sorted(set(max_lengths)) if reranker else []
    # The bar counts candidate pairs (retrieving one query counts as one), so its ETA follows the
    # reranking that dominates the time instead of racing through stage 1 and stalling after it.
    pairs_per_length = len(query_ids) * max_depth + len(sample) * sum(depths)
    total = len(modes) * (len(query_ids) + len(lengths) * pairs_per_length)
    bar = tqdm(total=total, desc=f"eval {evalset.name}", unit="pair", disable=not progress)
    index = None
    if any(mode != SUPPLIED for mode in modes):
        bar.set_postfix_str("building/opening the stage-1 index")
        index = open_index(evalset.name, evalset.corpus, embedding_model, progress)
    disk_cache = DiskScoreCache() if (reranker and use_cache) else None
    factory = scorer_factory or (lambda spec, length: make_scorer(spec, length, device, dtype))
    scorers = {length: factory(reranker, length) for length in lengths} if reranker else {}
    results: list[ConfigResult] = []
    with warnings.catch_warnings():
        # Collected per configuration below instead of printed once per evaluation.
        warnings.simplefilter("ignore", NoOverlapWarning)
        for mode in modes:
            search = supplied_stage1(evalset) if mode == SUPPLIED else index_stage1(index, mode)
            stage1: dict[str, list[tuple[str, float]]] = {}
            stage1_seconds: dict[str, float] = {}
            bar.set_postfix_str(f"stage 1: {mode}")
            for query_id in query_ids:
                start = time.perf_counter()
                stage1[query_id] = search(query_id, evalset.queries[query_id], max_depth)
                stage1_seconds[query_id] = time.perf_counter() - start
                bar.update(1)
            measured_stage1 = mode != SUPPLIED
            stage1_latency = _percentiles(list(stage1_seconds.values()) if measured_stage1 else [])
            for depth in depths:
                run = {q: hits[:depth] for q, hits in stage1.items()}
                evaluation = evaluate(evalset.qrels, run, metrics, threshold)
                latency = {"stage1": stage1_latency, "rerank": _percentiles([]), "total": stage1_latency}
                results.append(ConfigResult(Config(mode, depth), evaluation, latency))
            for length in lengths:
                cached = CachedScorer(scorers[length], disk_cache)
                bar.set_postfix_str(f"rerank: {mode}, max_length {length}")
                reranked_scores: dict[str, np.ndarray] = {}
                for query_id in query_ids:
                    texts = [evalset.corpus[d] for d, _ in stage1[query_id]]
                    reranked_scores[query_id] = cached.score(evalset.queries[query_id], texts)
                    bar.update(max_depth)
                rerank_seconds = _time_rerank(scorers[length], evalset, stage1, sample, depths, bar)
                for depth in depths:
                    run = {}
                    for query_id, hits in stage1.items():
                        top = hits[:depth]
                        scores = reranked_scores[query_id][: len(top)]
                        order = np.argsort(-scores, kind="stable")
                        run[query_id] = [(top[i][0], float(scores[i])) for i in order]
                    evaluation = evaluate(evalset.qrels, run, metrics, threshold)
                    totals = [
                        (stage1_seconds[q] if measured_stage1 else 0.0) + rerank_seconds[depth][q]
                        for q in sample
                    ]
                    latency = {
                        "stage1": stage1_latency,
                        "rerank": _percentiles(list(rerank_seconds[depth].values())),
                        "total": _percentiles(totals),
                    }
                    config = Config(mode, depth, scorers[length].name, length)
                    results.append(ConfigResult(config, evaluation, latency))
    bar.close()
    messages = [f"{r.config.name}: {message}" for r in results for message in r.evaluation.warnings]
    experiment = ExperimentResult(
        dataset={
            "name": evalset.name,
            "source": evalset.source,
            "queries": len(query_ids),
            "documents": len(evalset.corpus),
            "judgments": sum(len(d) for d in evalset.qrels.values()),
            "graded": evalset.graded,
            "relevance_threshold": threshold,
            "issues": evalset.issues,
        },
        settings={
            "modes": list(modes),
            "depths": depths,
            "reranker": scorers[lengths[0]].name if reranker else None,
            "max_lengths": lengths,
            "embedding_model": embedding_model if index is not None else None,
            "latency_sample": len(sample),
            "metrics": list(metrics),
            "cpu_threads": os.cpu_count(),
            "score_cache": str(disk_cache.path) if disk_cache else None,
            "score_cache_hits": disk_cache.hits if disk_cache else 0,
            "score_cache_misses": disk_cache.misses if disk_cache else 0,
        },
        results=results,
        warnings=messages,
    )
    if disk_cache:
        disk_cache.close()
    if any(r.config.reranker and r.evaluation.valid for r in results) and PRIMARY_METRIC in metrics:
        best = experiment.best(reranked=True)
        baseline = experiment.result(best.config.baseline())
        experiment.significance = [
            paired_test(
                metric,
                (baseline.config.name, baseline.evaluation.per_query_metric(metric)),
                (best.config.name, best.evaluation.per_query_metric(metric)),
            )
            for metric in SIGNIFICANCE_METRICS
            if metric in metrics
        ]
    experiment.wall_seconds = time.perf_counter() - started
    return experiment


def _time_rerank(
    scorer: Scorer,
    evalset: EvalSet,
    stage1: dict[str, list[tuple[str, float]]],
    sample: list[str],
    depths: list[int],
    bar: tqdm,
) -> dict[int, dict[str, float]]:
    """Seconds to score each sampled query's top-d candidates afresh (no cache), per depth."""
    seconds: dict[int, dict[str, float]] = {depth: {} for depth in depths}
    if not sample:
        return seconds
    first = sample[0]
    scorer.score(
        evalset.queries[first], [evalset.corpus[d] for d, _ in stage1[first][: depths[0]]]
    )  # warm-up
    for query_id in sample:
        for depth in depths:
            texts = [evalset.corpus[d] for d, _ in stage1[query_id][:depth]]
            start = time.perf_counter()
            if texts:
                scorer.score(evalset.queries[query_id], texts)
            seconds[depth][query_id] = time.perf_counter() - start
        bar.update(sum(depths))
    return seconds
