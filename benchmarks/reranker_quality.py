"""Quality of a trained cross-encoder on sets it never trained on: TREC DL 2019, SciFact test, NFCorpus test.

Run from the repository root (slow on 2 CPU cores: DL19 alone is 4,300 pairs):
    python benchmarks/reranker_quality.py --model runs/winnow-minilm-l6/model --sets dl19 scifact
Prints a table and writes docs/reranker-quality.md. Stage 1 is the supplied BM25 top-100 for DL19 and
bm25s BM25 top-``--depth`` for the BEIR sets (documents as "title text"). nDCG@10 uses trec_eval's
linear gains; the BM25 order of DL19 must score 0.5058 (Pyserini's published figure).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from winnow.models.hardware import DTYPE_NAMES, torch_dtype
from winnow.training.data import read_beir
from winnow.training.dev import ndcg_at_k, score_pairs
from winnow.training.negatives import mine_bm25
from winnow.training.trainer import load_cross_encoder

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
REPORT = REPO / "docs" / "reranker-quality.md"


def dl19_stage1() -> tuple[dict[str, str], dict[str, str], dict[str, list[str]], dict[str, dict[str, int]]]:
    """DL19 corpus, queries, the supplied BM25 top-100 run (in its order) and the graded qrels."""
    split = read_beir(DATA / "msmarco_trec_dl" / "dl19_bm25_top100", "test")
    run: dict[str, list[str]] = {}
    run_file = DATA / "msmarco_trec_dl" / "original" / "rank_llm.BM25.trec_results_dl19.txt"
    for line in run_file.read_text(encoding="utf-8").splitlines():
        qid, _, doc_id, _rank, _score, _tag = line.split()
        run.setdefault(qid, []).append(doc_id)
    return split.corpus, split.queries, run, split.qrels


def beir_stage1(name: str, depth: int) -> tuple[dict[str, str], dict[str, str], dict[str, list[str]], dict]:
    """A BEIR test split with a bm25s BM25 top-``depth`` run."""
    split = read_beir(DATA / "beir" / name, "test")
    queries = {q: split.queries[q] for q in split.qrels}
    return split.corpus, queries, mine_bm25(split.corpus, queries, depth=depth), split.qrels


def mean_ndcg(run: dict[str, list[str]], qrels: dict[str, dict[str, int]]) -> float:
    """Mean nDCG@10 over the judged queries."""
    values = [ndcg_at_k([qrels[q].get(d, 0) for d in run.get(q, [])], list(qrels[q].values())) for q in qrels]
    return sum(values) / len(values)


def rerank(model, tokenizer, corpus, queries, run, depth, max_length, autocast) -> dict[str, list[str]]:
    """Reorder each query's top ``depth`` by the cross-encoder; the rest keep their stage-1 order."""
    reranked = {}
    for qid in tqdm(list(run), desc="rerank", unit="query"):
        head, tail = run[qid][:depth], run[qid][depth:]
        scores = score_pairs(
            model, tokenizer, [(queries[qid], corpus[d]) for d in head], max_length, autocast_dtype=autocast
        )
        reranked[qid] = [d for _, d in sorted(zip(scores, head, strict=True), key=lambda x: -x[0])] + tail
    return reranked


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True)
    parser.add_argument("--sets", nargs="+", default=["dl19"], choices=["dl19", "scifact", "nfcorpus"])
    parser.add_argument("--depth", type=int, default=100, help="DL19 candidates reranked per query")
    parser.add_argument("--beir-depth", type=int, default=100, help="BEIR candidates reranked per query")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--dtype", default="bf16", choices=list(DTYPE_NAMES))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, tokenizer = load_cross_encoder(args.model)
    autocast = None if args.dtype == "fp32" else torch_dtype(args.dtype)
    rows = []
    for name in args.sets:
        depth = args.depth if name == "dl19" else args.beir_depth
        corpus, queries, run, qrels = dl19_stage1() if name == "dl19" else beir_stage1(name, depth)
        started = time.monotonic()
        reranked = rerank(model, tokenizer, corpus, queries, run, depth, args.max_length, autocast)
        rows.append(
            {
                "set": name,
                "queries": len(qrels),
                "depth": depth,
                "max_length": args.max_length,
                "stage1_ndcg@10": round(mean_ndcg(run, qrels), 4),
                "reranked_ndcg@10": round(mean_ndcg(reranked, qrels), 4),
                "seconds": round(time.monotonic() - started),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    lines = [
        f"# Reranker quality: `{args.model}`",
        "",
        f"Command: `python benchmarks/reranker_quality.py {' '.join(sys.argv[1:])}`",
        "",
        "| set | queries | stage 1 | reranked top-k | max_length | stage-1 nDCG@10 | reranked nDCG@10 | s |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        stage1 = "supplied BM25 top-100" if row["set"] == "dl19" else "bm25s BM25"
        lines.append(
            f"| {row['set']} | {row['queries']} | {stage1} | {row['depth']} | {row['max_length']} | "
            f"{row['stage1_ndcg@10']:.4f} | {row['reranked_ndcg@10']:.4f} | {row['seconds']} |"
        )
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
