"""The cascade against the single model: nDCG@10 and rerank latency on 100 candidates per query.

Sets (never trained on): TREC DL 2019 with its supplied BM25 top-100, and SciFact test queries with
bm25s BM25 top-100. Quality: both models score every candidate once; the cascade's ranking for each
``keep`` is the full model's order of the student's top ``keep`` (what ``Cascade`` computes). The
alternative a user would try first is reranking fewer stage-1 candidates ("BM25 top ``keep``, full
model"): the same computation with BM25's order as the pruner, at no extra cost. Latency:
``Reranker.rerank`` against ``Cascade.rerank`` on the same 100 candidates, called alternately in this
process, no score cache; the figure is the median over queries and repeats. A check confirms that
``Cascade.rerank`` returns the top 10 the quality computation assumes.

    winnow train recipes/winnow-minilm-l2.yaml         # the student, about 6 minutes
    python benchmarks/cascade.py                      # writes docs/cascade.md and docs/cascade.png
    python benchmarks/cascade.py --scifact-queries 50 --latency-queries 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from markdown_report import write_section
from reranker_quality import beir_stage1, dl19_stage1, mean_ndcg
from tqdm import tqdm

from winnow import Cascade, Reranker

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
KEEPS = (10, 15, 20, 30, 50)


def score_all(reranker: Reranker, queries, corpus, run) -> dict[str, np.ndarray]:
    """The model's score for every (query, candidate), per query in stage-1 order."""
    return {
        q: reranker.score([(queries[q], corpus[d]) for d in run[q]])
        for q in tqdm(list(run), desc=f"score {reranker.model_name}", unit="query")
    }


def order(run, scores, keep: int | None = None, pruner=None) -> dict[str, list[str]]:
    """Each query's candidates by ``scores``; with ``keep``, only the top ``keep`` by ``pruner``'s scores."""
    ranked = {}
    for q, docs in run.items():
        pool = np.arange(len(docs))
        if keep is not None:
            pool = np.argsort(-pruner[q], kind="stable")[:keep]
        pool = pool[np.argsort(-scores[q][pool], kind="stable")]
        ranked[q] = [docs[i] for i in pool]
    return ranked


def latency(calls, queries, corpus, run, sample, repeats) -> dict[str, float]:
    """Median seconds per query of each ``label -> call(query, documents)``, called in turn per query."""
    times: dict[str, list[float]] = {label: [] for label in calls}
    for _ in range(repeats):
        for q in tqdm(sample, desc="latency", unit="query"):
            docs = [corpus[d] for d in run[q]]
            for label, call in calls.items():
                start = time.perf_counter()
                call(queries[q], docs)
                times[label].append(time.perf_counter() - start)
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--student", default=str(REPO / "runs" / "winnow-minilm-l2" / "model"), help="its recipe"
    )
    parser.add_argument("--model", default="winnow-minilm-l6")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument(
        "--scifact-queries", type=int, default=100, help="first N judged SciFact test queries"
    )
    parser.add_argument("--latency-queries", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    options = {"max_length": args.max_length, "cache": 0}
    student, model = Reranker(args.student, **options), Reranker(args.model, **options)
    # runs/<name>/model is shown as <name>, the name its recipe gives it
    student_name = Path(args.student).parent.name if Path(args.student).name == "model" else args.student
    cascades = [Cascade(student, model, keep=k) for k in (15, 20, 30)]

    rows, timing, plots, checks = [], {}, {}, []
    for name in ("dl19", "scifact"):
        corpus, queries, run, qrels = dl19_stage1() if name == "dl19" else beir_stage1("scifact", 100)
        if name == "scifact":
            kept = list(qrels)[: args.scifact_queries]
            qrels, run = {q: qrels[q] for q in kept}, {q: run[q] for q in kept}
        run = {q: run[q][:100] for q in qrels}
        small, full = score_all(student, queries, corpus, run), score_all(model, queries, corpus, run)
        result = {
            "stage 1 (BM25)": mean_ndcg(run, qrels),
            f"{student_name} alone": mean_ndcg(order(run, small), qrels),
            f"{args.model} alone": mean_ndcg(order(run, full), qrels),
        }
        stage1 = {q: -np.arange(len(docs), dtype=np.float32) for q, docs in run.items()}
        for keep in KEEPS:
            result[f"cascade keep {keep}"] = mean_ndcg(order(run, full, keep, small), qrels)
        for keep in KEEPS:
            result[f"BM25 top {keep}, full model"] = mean_ndcg(order(run, full, keep, stage1), qrels)
        rows.append((name, len(qrels), result))
        plots[name] = (
            {
                "cascade": [(k, result[f"cascade keep {k}"]) for k in KEEPS],
                "BM25 top k, full model": [(k, result[f"BM25 top {k}, full model"]) for k in KEEPS],
            },
            result[f"{args.model} alone"],
        )
        print(name, {k: round(v, 4) for k, v in result.items()}, flush=True)

        sample = list(run)[: args.latency_queries]
        for cascade in cascades:  # the real Cascade returns the top 10 the quality figures assume
            for q in sample[:3]:
                got = [
                    run[q][r.index] for r in cascade.rerank(queries[q], [corpus[d] for d in run[q]], top_k=10)
                ]
                expected = order(run, full, cascade.keep, small)[q][:10]
                checks.append((got == expected, len(set(got) & set(expected))))
        calls = {f"{args.model} alone": model.rerank}
        for cascade in cascades:
            calls[f"cascade keep {cascade.keep}"] = cascade.rerank
            calls[f"BM25 top {cascade.keep}, full model"] = lambda q, d, k=cascade.keep: model.rerank(
                q, d[:k]
            )
        timing[name] = latency(calls, queries, corpus, run, sample, args.repeats)
        print(name, {k: round(v * 1000) for k, v in timing[name].items()}, "ms", flush=True)

    lines = [
        f"Cascade `{student_name}` → `{args.model}` against `{args.model}` alone, reranking 100 candidates "
        f"per query (max_length {args.max_length}, {student.backend_name} {student.dtype}, "
        f"{args.threads} threads).",
        "",
        f"Command: `python benchmarks/cascade.py {' '.join(sys.argv[1:])}`",
        "",
        "| set | queries | reranker | nDCG@10 | Δ vs full model | rerank ms (median) | vs full model |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for name, count, result in rows:
        base = result[f"{args.model} alone"]
        single = timing[name][f"{args.model} alone"]
        for label, value in result.items():
            ms = timing[name].get(label)
            cost = "" if ms is None else f"{ms * 1000:.0f}"
            ratio = "" if ms is None else f"{ms / single:.2f}×"
            lines.append(
                f"| {name} | {count} | {label} | {value:.4f} | {value - base:+.4f} | {cost} | {ratio} |"
            )
    exact = sum(same for same, _ in checks)
    lines += [
        "",
        f"Check: `Cascade.rerank`'s top 10 equals the computed one in {exact} of {len(checks)} queries "
        f"checked (the others share {min(common for _, common in checks)} or more of the 10: bf16 scores "
        "move by a few hundredths with the batch they are computed in, which swaps near ties).",
        "",
        "![cascade against reranking fewer candidates](cascade.png)",
    ]
    write_section("cascade", "\n".join(lines), DOCS / "cascade.md")
    plot(plots, args.model)


def plot(plots, model_name: str) -> None:
    """nDCG@10 of the cascade against how many candidates the student keeps, the full model as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(plots), figsize=(5 * len(plots), 3.6))
    for axis, (name, (lines, full)) in zip(np.atleast_1d(axes), plots.items(), strict=True):
        for label, points in lines.items():
            axis.plot([k for k, _ in points], [v for _, v in points], "o-", label=label)
        axis.axhline(full, color="grey", linestyle="--", label=f"{model_name} alone")
        axis.axhspan(full - 0.01, full, color="grey", alpha=0.15, label="within 0.01")
        axis.set(title=name, xlabel="candidates the full model reranks (of 100)", ylabel="nDCG@10")
        axis.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(DOCS / "cascade.png", dpi=120)


if __name__ == "__main__":
    main()
