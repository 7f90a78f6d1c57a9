"""SciFact anchors as a regression test: stage 1 alone, whole abstracts, 300 test queries (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ranx import Qrels, Run, evaluate

from winnow.retrieve import Index
from winnow.retrieve.ingest import load_beir_corpus

# Measured with benchmarks/stage1_quality.py (docs/benchmarks.md): bm25 0.6791, dense 0.6452 (bf16
# linear layers, fp32 residual), RRF 0.7153, hybrid default 0.7305 with Recall@100 0.9483; anchors 0.679,
# 0.645 and 0.715. Floors leave room for bf16 kernel differences between CPUs only.
SETTINGS = {
    "bm25": {"mode": "bm25"},
    "dense": {"mode": "dense"},
    "rrf": {"mode": "hybrid", "fusion": "rrf"},
    "hybrid": {"mode": "hybrid"},
}
FLOORS = {"bm25": 0.678, "dense": 0.643, "rrf": 0.713, "hybrid": 0.728}


@pytest.fixture(scope="session")
def scifact_index(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    with Index.create(tmp_path_factory.mktemp("scifact") / "index", chunk_tokens=None) as index:
        index.add(
            load_beir_corpus(shared_data / "beir" / "scifact"), progress=False, commit_every_chunks=1024
        )
        yield index


@pytest.mark.slow
def test_scifact_stage1_reaches_the_anchors(shared_data: Path, scifact_index: Index) -> None:
    folder = shared_data / "beir" / "scifact"
    qrels: dict[str, dict[str, int]] = {}
    for line in (folder / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, did, score = line.strip().split("\t")
        qrels.setdefault(qid, {})[did] = int(score)
    queries = {
        record["_id"]: record["text"]
        for record in map(json.loads, (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines())
        if record["_id"] in qrels
    }
    assert len(queries) == 300
    scores = {}
    for mode in FLOORS:
        run = {
            qid: {h.doc_id: 101.0 - h.rank for h in scifact_index.search(text, k=100, **SETTINGS[mode])}
            for qid, text in queries.items()
        }
        scores[mode] = evaluate(Qrels(qrels), Run(run), ["ndcg@10", "recall@100"])
    for mode, floor in FLOORS.items():
        assert scores[mode]["ndcg@10"] >= floor, (mode, scores[mode])
    assert scores["hybrid"]["recall@100"] >= 0.94
    assert scores["hybrid"]["ndcg@10"] > max(scores["bm25"]["ndcg@10"], scores["dense"]["ndcg@10"])
