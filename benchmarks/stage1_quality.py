"""SciFact test: nDCG@10 and Recall@100 of Winnow's stage 1 in every mode, against the published anchors.

Builds (once, cached in .winnow-cache/) an index of the 5,183 SciFact abstracts, whole documents with
title + text searched, then scores the 300 test queries with ranx. Writes the table to docs/benchmarks.md.

Run: nice .venv/bin/python benchmarks/stage1_quality.py
"""

from __future__ import annotations

import time

from _common import CACHE, DATA
from markdown_report import write_section
from ranx import Qrels, Run, evaluate

from winnow.evaluation.datasets import load_beir
from winnow.retrieve import Index
from winnow.retrieve.ingest import load_beir_corpus

ANCHORS = {"bm25": 0.679, "dense": 0.645, "hybrid (RRF k=60)": 0.715}
CONFIGS = [
    ("bm25", {"mode": "bm25"}),
    ("dense", {"mode": "dense"}),
    ("hybrid (RRF k=60)", {"mode": "hybrid", "fusion": "rrf"}),
    ("hybrid (RRF k=60, depth 1000)", {"mode": "hybrid", "fusion": "rrf", "depth": 1000}),
    ("hybrid (weighted 0.5) = default", {"mode": "hybrid"}),
]


def main() -> None:
    folder = DATA / "beir" / "scifact"
    path = CACHE / "scifact-whole"
    index = Index.open_or_create(path, chunk_tokens=None)
    start = time.perf_counter()
    stats = index.add(load_beir_corpus(folder), progress=True, commit_every_chunks=1024)
    print(f"index: {stats} ({time.perf_counter() - start:.1f} s)")
    evalset = load_beir(folder)
    queries, qrels = evalset.queries, Qrels(evalset.qrels)
    rows = []
    for name, settings in CONFIGS:
        run: dict[str, dict[str, float]] = {}
        for qid, text in queries.items():
            hits = index.search(text, k=100, **settings)
            run[qid] = {}
            for hit in hits:  # whole-document index: one chunk per document
                run[qid].setdefault(hit.doc_id, float(100 - hit.rank + 1))
        scores = evaluate(qrels, Run(run), ["ndcg@10", "recall@100"])
        anchor = ANCHORS.get(name)
        rows.append((name, scores["ndcg@10"], scores["recall@100"], anchor))
        print(
            f"{name:32s} nDCG@10 {scores['ndcg@10']:.4f}  R@100 {scores['recall@100']:.4f}  anchor {anchor}"
        )
    table = ["| mode | nDCG@10 | Recall@100 | anchor nDCG@10 |", "|---|---:|---:|---:|"]
    for name, ndcg, recall, anchor in rows:
        table.append(f"| {name} | {ndcg:.4f} | {recall:.4f} | {anchor if anchor else '-'} |")
    write_section(
        "stage1-quality",
        "### Quality: SciFact test (stage 1 alone)\n\n"
        "300 test queries, 5,183 abstracts indexed whole (title + text), all-MiniLM-L6-v2 with bf16 linear "
        "layers (fused, the rest fp32: winnow.models.fused_linear), bm25s "
        "k1 1.2 b 0.75 with English stopwords and Snowball stemming. Fusion depth 100 per list unless "
        "stated. `nice .venv/bin/python benchmarks/stage1_quality.py`\n\n" + "\n".join(table),
    )


if __name__ == "__main__":
    main()
