"""Calibration and abstention on SciFact: fit on the train split, measure on the test split and on 30
out-of-domain questions the corpus cannot answer.

Run from the repository root (scores are cached, a second run only refits):
    python benchmarks/calibration_scifact.py --model winnow-minilm-l6
Stage 1 is bm25s BM25 top-``--k`` over the corpus ("title text"), labels are the qrels. Writes the
"calibration-scifact" section of docs/signals.md and the reliability diagram docs/signals-reliability.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from markdown_report import write_section

from winnow.evaluation.calibration_data import read_questions, score_queries, scorer_for
from winnow.evaluation.corpus_index import bm25_candidates
from winnow.evaluation.datasets import load_dataset
from winnow.rerank import DEFAULT_RERANKER
from winnow.rerank.calibration import (
    SigmoidCalibrator,
    expected_calibration_error,
    fit_calibrator,
    reliability_diagram,
)
from winnow.signals.abstention import answer_stats, propose_threshold

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data" / "beir" / "scifact"
OOD = REPO / "benchmarks" / "data" / "ood_questions.txt"
REPORT = REPO / "docs" / "signals.md"
DIAGRAM = REPO / "docs" / "signals-reliability.png"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_RERANKER, help="cross-encoder name or path")
    parser.add_argument("--k", type=int, default=10, help="BM25 candidates per query")
    parser.add_argument(
        "--train-queries", type=int, default=150, help="train queries fitted on (evenly spread; 0 = all 809)"
    )
    parser.add_argument("--method", default="platt", choices=["platt", "isotonic"], help="for the threshold")
    parser.add_argument("--target-precision", type=float, default=0.6)
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/signals.md alone")
    args = parser.parse_args()

    train_set = load_dataset(DATA, split="train")
    test_set = load_dataset(DATA, split="test")
    search = bm25_candidates(train_set.corpus)
    scorer = scorer_for(args.model)
    train_ids = list(train_set.queries)
    if 0 < args.train_queries < len(train_ids):
        train_ids = [train_ids[i] for i in np.linspace(0, len(train_ids) - 1, args.train_queries).astype(int)]
    train_queries = {q: train_set.queries[q] for q in train_ids}
    train = score_queries(train_queries, search, scorer, args.k, train_set.qrels)
    test = score_queries(test_set.queries, search, scorer, args.k, test_set.qrels)
    ood = score_queries(read_questions(OOD), search, scorer, args.k)

    train_x, train_y = train.flat()
    test_x, test_y = test.flat()
    calibrators = {"sigmoid": SigmoidCalibrator()}
    for kind in ("platt", "isotonic"):
        calibrators[kind] = fit_calibrator(kind, train_x, train_y)
    ece = {name: expected_calibration_error(c.transform(test_x), test_y) for name, c in calibrators.items()}
    reliability_diagram(
        {name: (c.transform(test_x), test_y) for name, c in calibrators.items()},
        DIAGRAM,
        title=f"SciFact test, BM25 top-{args.k}, {Path(args.model).name}",
    )

    chosen = calibrators[args.method]
    train_best, train_relevant = train.best()
    proposal = propose_threshold(chosen.transform(train_best), train_relevant, args.target_precision)
    test_best, test_relevant = test.best()
    test_probs = chosen.transform(test_best)
    precision, answer_rate = answer_stats(test_probs, test_relevant, proposal.threshold)
    # OOD questions BM25 finds nothing for are refused before the reranker is asked.
    ood_probs = chosen.transform(ood.best()[0]) if ood.logits else np.zeros(0)
    ood_total = len(ood_probs) + ood.skipped.get("no_candidates", 0)
    refused = (int((ood_probs < proposal.threshold).sum()) + ood.skipped.get("no_candidates", 0)) / ood_total
    # Every threshold in [low, high] refuses >= 80% of OOD questions and answers >= 80% of test queries.
    low = float(np.quantile(ood_probs, 0.8, method="higher")) if len(ood_probs) else 0.0
    high = float(np.quantile(test_probs, 0.2, method="lower"))

    lines = [
        f"## Calibration and abstention on SciFact (`{args.model}`)",
        "",
        f"Fitted on the train split (BM25 top-{args.k} of {len(train.query_ids)} queries: {len(train_x)} "
        f"pairs, {int(train_y.sum())} relevant), measured on the test split ({len(test.query_ids)} queries, "
        f"{len(test_x)} pairs). Command: `python benchmarks/calibration_scifact.py --model {args.model} "
        f"--train-queries {args.train_queries}`.",
        "",
        "| calibrator | ECE on test (10 bins) |",
        "|---|---:|",
        *[f"| {name} | {value:.4f} |" for name, value in ece.items()],
        "",
        f"Threshold ({args.method}) proposed on train for precision ≥ {args.target_precision:.2f} "
        f"of the best candidate: **{proposal.threshold:.3f}** "
        f"(train precision {proposal.precision:.3f}, answer rate "
        f"{proposal.answer_rate:.3f}{'' if proposal.reached else ', target not reached'}).",
        "",
        "| at that threshold | value |",
        "|---|---:|",
        f"| test precision (best candidate relevant) | {precision:.3f} |",
        f"| test answer rate (answerable queries answered) | {answer_rate:.3f} |",
        f"| out-of-domain questions refused ({ood_total}) | {refused:.3f} |",
        "",
        "Thresholds that refuse ≥ 80% of the out-of-domain questions and answer ≥ 80% of test queries: "
        + (
            f"[{low:.3f}, {high:.3f}]."
            if low <= high
            else f"none with this model (need ≥ {low:.3f} and ≤ {high:.3f})."
        ),
        "",
        f"![reliability diagram]({DIAGRAM.name})",
    ]
    markdown = "\n".join(lines)
    print(markdown)
    if not args.no_report:
        write_section("calibration-scifact", markdown, REPORT)
        print(f"wrote {REPORT} and {DIAGRAM}")


if __name__ == "__main__":
    main()
