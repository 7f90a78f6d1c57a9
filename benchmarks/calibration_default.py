"""The calibration shipped with the default model: fitted on labelled data held apart from every evaluation
set and from the model's training data, measured (ECE, abstention) on the evaluation sets.

Fitted on: NFCorpus dev (queries after the first 10, which chose the model's checkpoint), WikiQA dev
(questions after the first 50, same reason) and TrecQA dev (never used). Measured on: SciFact test,
NFCorpus test, TREC DL19, WikiQA test, TrecQA test, and 30 out-of-domain questions over the SciFact corpus.
Run from the repository root (scores are cached, a second run only refits):
    python benchmarks/calibration_default.py              # print, and write docs/signals.md
    python benchmarks/calibration_default.py --write-model   # also ship calibration.json with the model
Stage 1 is bm25s BM25 top-``--k`` (DL19: the supplied BM25 run); max_length 512, as ``Reranker()`` serves.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from _common import DATA, REPO
from markdown_report import write_section

from winnow.evaluation.calibration_data import LabelledScores, read_questions, score_queries, scorer_for
from winnow.evaluation.corpus_index import bm25_candidates
from winnow.evaluation.datasets import load_dataset
from winnow.models import resolve_model
from winnow.models.hardware import cpu_bf16_units, cpu_name
from winnow.rerank import DEFAULT_RERANKER
from winnow.rerank.calibration import (
    CALIBRATION_FILE,
    SigmoidCalibrator,
    expected_calibration_error,
    fit_calibrator,
    save_calibrator,
)
from winnow.signals.abstention import DEFAULT_MIN_CONFIDENCE, answer_stats, propose_threshold

OOD = REPO / "benchmarks" / "data" / "ood_questions.txt"
REPORT = REPO / "docs" / "signals.md"
STOPWORDS = "the of and to a in is it"
THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5)
CHECKPOINT_SLICE = {"nfcorpus-dev": 10, "wikiqa-dev": 50}  # the model card's "used to choose the checkpoint"


def spread(ids: list[str], count: int) -> list[str]:
    """``count`` ids evenly spread over ``ids`` (all of them when count is 0 or larger)."""
    if not 0 < count < len(ids):
        return ids
    return [ids[i] for i in np.linspace(0, len(ids) - 1, count).astype(int)]


def beir(name: str, split: str, scorer, k: int, count: int, skip: int = 0) -> LabelledScores:
    evalset = load_dataset(name, split=split)
    ids = spread(list(evalset.queries)[skip:], count)
    queries = {q: evalset.queries[q] for q in ids}
    if evalset.candidates is not None:  # a reranking set (DL19): its supplied stage-1 run
        by_text = {text: q for q, text in queries.items()}

        def search(query: str, depth: int) -> list[tuple[str, str]]:
            ranked = evalset.candidates.get(by_text[query], [])[:depth]
            return [(doc, evalset.corpus[doc]) for doc, _ in ranked]
    else:
        search = bm25_candidates(evalset.corpus)
    return score_queries(queries, search, scorer, k, evalset.qrels, evalset.relevance_threshold)


def grouped(path: Path, scorer, skip: int = 0) -> LabelledScores:
    """A grouped answer-selection file (``query``, ``positives``, ``negatives``): every candidate scored."""
    out = LabelledScores()
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for row in rows[skip:]:
        texts = row["positives"] + row["negatives"]
        labels = np.r_[np.ones(len(row["positives"])), np.zeros(len(row["negatives"]))]
        out.add(row["qid"], scorer.score(row["query"], texts), labels)
    return out


def merge(parts: list[LabelledScores]) -> LabelledScores:
    out = LabelledScores()
    for part in parts:
        for query_id, logits, labels in zip(part.query_ids, part.logits, part.labels, strict=True):
            out.add(query_id, logits, labels)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_RERANKER, help="cross-encoder name or path")
    parser.add_argument("--k", type=int, default=10, help="BM25 candidates per query")
    parser.add_argument("--fit-queries", type=int, default=60, help="NFCorpus dev queries fitted on")
    parser.add_argument("--eval-queries", type=int, default=60, help="SciFact / NFCorpus test queries")
    parser.add_argument("--target-precision", type=float, default=0.6, help="for the proposed threshold")
    parser.add_argument("--write-model", action="store_true", help="save calibration.json beside the model")
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/signals.md alone")
    args = parser.parse_args()

    scorer = scorer_for(args.model)
    train = DATA / "train"
    fit_parts = {
        "NFCorpus dev": beir(
            "nfcorpus", "dev", scorer, args.k, args.fit_queries, CHECKPOINT_SLICE["nfcorpus-dev"]
        ),
        "WikiQA dev": grouped(train / "wikiqa" / "dev_grouped.jsonl", scorer, CHECKPOINT_SLICE["wikiqa-dev"]),
        "TrecQA dev": grouped(train / "trecqa" / "dev_grouped.jsonl", scorer),
    }
    fit = merge(list(fit_parts.values()))
    fit_x, fit_y = fit.flat()
    calibrators = {
        "sigmoid": SigmoidCalibrator(),
        "platt": fit_calibrator("platt", fit_x, fit_y),
        "isotonic": fit_calibrator("isotonic", fit_x, fit_y),
    }
    shipped = calibrators["platt"]
    best_fit, fit_relevant = fit.best()
    proposal = propose_threshold(shipped.transform(best_fit), fit_relevant, args.target_precision)

    evals = {
        "SciFact test": beir("scifact", "test", scorer, args.k, args.eval_queries),
        "NFCorpus test": beir("nfcorpus", "test", scorer, args.k, args.eval_queries),
        "TREC DL19": beir("dl19", "test", scorer, args.k, 0),
        "WikiQA test": grouped(train / "wikiqa" / "test_grouped.jsonl", scorer),
        "TrecQA test": grouped(train / "trecqa" / "test_grouped.jsonl", scorer),
    }
    scifact = load_dataset("scifact", split="test")
    scifact_search = bm25_candidates(scifact.corpus)
    ood = score_queries(read_questions(OOD), scifact_search, scorer, args.k)
    ood_probs = shipped.transform(ood.best()[0])
    stop_hits = scifact_search(STOPWORDS, args.k)
    stop_prob = (
        float(shipped.transform(scorer.score(STOPWORDS, [t for _, t in stop_hits])).max())
        if stop_hits
        else None
    )

    rows = []
    for name, data in evals.items():
        x, y = data.flat()
        ece = [expected_calibration_error(c.transform(x), y) for c in calibrators.values()]
        best, relevant = data.best()
        precision, rate = answer_stats(shipped.transform(best), relevant, DEFAULT_MIN_CONFIDENCE)
        rows.append(
            f"| {name} | {len(data.query_ids)} | {len(x)} | {int(y.sum())} | "
            + " | ".join(f"{value:.4f}" for value in ece)
            + f" | {rate:.3f} | {precision:.3f} |"
        )
    sweep = [
        f"| {t:.2f} | "
        + " | ".join(f"{(shipped.transform(d.best()[0]) >= t).mean():.2f}" for d in evals.values())
        + f" | {(ood_probs < t).mean():.2f} |"
        for t in THRESHOLDS
    ]
    fit_x_ece = {
        name: expected_calibration_error(c.transform(fit_x), fit_y) for name, c in calibrators.items()
    }
    refused = float((ood_probs < DEFAULT_MIN_CONFIDENCE).mean())
    bf16 = cpu_bf16_units() or "no bf16 units"
    parts = ", ".join(f"{name} {len(p.query_ids)} queries" for name, p in fit_parts.items())
    lines = [
        f"## Calibration shipped with the default model (`{args.model}`)",
        "",
        f"Platt scaling `sigmoid({shipped.a:.4f}·logit {shipped.b:+.4f})`, fitted on {parts} "
        f"({len(fit_x)} pairs, {int(fit_y.sum())} relevant; BEIR sets: BM25 top-{args.k}; "
        "answer-selection sets: every candidate sentence). None of it is an evaluation set or was "
        "trained on; the first 10 NFCorpus dev and 50 WikiQA dev questions, which chose the model's "
        "checkpoint, are left out. "
        f"ECE on the fitting data: sigmoid {fit_x_ece['sigmoid']:.4f}, Platt {fit_x_ece['platt']:.4f}. "
        f"Scored at max_length 512 on {cpu_name()} ({bf16}). Command: "
        f"`python benchmarks/calibration_default.py --fit-queries {args.fit_queries} "
        f"--eval-queries {args.eval_queries} --write-model`.",
        "",
        f"ECE (10 bins) on sets never fitted on, and abstention at the default `--min-confidence "
        f"{DEFAULT_MIN_CONFIDENCE}` (answered: queries whose best candidate reaches it; precision: of those, "
        "the best candidate is relevant). Isotonic is fitted on the same data, for comparison (not shipped).",
        "",
        "| set | queries | pairs | relevant | ECE sigmoid | ECE **Platt (shipped)** | ECE isotonic "
        "| answered | precision |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        "",
        f"- Out-of-domain: {len(ood_probs)} everyday questions over the SciFact corpus; best calibrated "
        f"probability median {np.median(ood_probs):.3f}, max {ood_probs.max():.3f}; "
        f"refused at {DEFAULT_MIN_CONFIDENCE}: {refused:.0%}.",
        f"- Stopword-only query `{STOPWORDS}` over SciFact: "
        + ("BM25 finds nothing (abstains)." if stop_prob is None else f"best probability {stop_prob:.3f}."),
        "",
        "How the default threshold was chosen: the fraction of each set's queries answered, and of the "
        "out-of-domain questions refused, at each threshold.",
        "",
        "| threshold | " + " | ".join(f"answered {name}" for name in evals) + " | OOD refused |",
        "|---:|" + "---:|" * (len(evals) + 1),
        *sweep,
        "",
        f"- Threshold proposed on the fitting data for precision ≥ {args.target_precision:.2f}: "
        f"{proposal.threshold:.3f} (precision {proposal.precision:.3f}, "
        f"answer rate {proposal.answer_rate:.3f}{'' if proposal.reached else ', target not reached'}).",
    ]
    markdown = "\n".join(lines)
    print(markdown)
    if args.write_model:
        model_dir = resolve_model(args.model)
        save_calibrator(
            shipped,
            model_dir / CALIBRATION_FILE,
            model_dir,
            model=args.model,
            fitted_on={
                "data": [f"{name} ({len(part.query_ids)} queries)" for name, part in fit_parts.items()],
                "queries": len(fit.query_ids),
                "pairs": len(fit_x),
                "relevant": int(fit_y.sum()),
                "k": args.k,
                "max_length": 512,
            },
            # What `winnow search` / `ask` abstain below; the proposal is the fitting data's own suggestion.
            default_min_confidence=DEFAULT_MIN_CONFIDENCE,
            proposed_threshold={
                "value": proposal.threshold,
                "target_precision": args.target_precision,
                "precision": proposal.precision,
                "answer_rate": proposal.answer_rate,
            },
            command="python benchmarks/calibration_default.py --write-model",
        )
        print(f"wrote {model_dir / CALIBRATION_FILE}")
    if not args.no_report:
        write_section("calibration-default", markdown, REPORT)
        print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
