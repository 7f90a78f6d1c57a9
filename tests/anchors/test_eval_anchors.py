"""Public anchors the harness must reproduce exactly (±0.005): TREC DL 2019 and BEIR SciFact.

DL19's supplied BM25 order scores nDCG@10 0.5058 (Pyserini's published figure); all-MiniLM-L6-v2 as a
bi-encoder reranker of that top-100 scores 0.6425 (measured here, fp32, 256 tokens). SciFact through
``winnow.retrieve``: BM25 0.679 (bm25s settings; bm25s publishes 0.680), dense all-MiniLM-L6-v2 0.645,
RRF hybrid 0.715.
"""

from __future__ import annotations

import pytest

from winnow.evaluation.datasets import load_dataset
from winnow.evaluation.experiment import Config, run_grid
from winnow.evaluation.metrics import evaluate

TOLERANCE = 0.005


@pytest.fixture(scope="module")
def dl19(shared_data, monkeypatch_module):
    monkeypatch_module.setenv("WINNOW_DATA_DIR", str(shared_data))
    return load_dataset("dl19")


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_dl19_supplied_bm25_order_scores_the_published_figure(dl19):
    result = evaluate(
        dl19.qrels, dl19.candidates, ["nDCG@10", "MRR@10", "Recall@100"], dl19.relevance_threshold
    )
    assert result.mean["nDCG@10"] == pytest.approx(0.5058, abs=TOLERANCE)
    # Binary metrics at TREC DL's threshold (grade >= 2), as trec_eval -l 2 reports them.
    assert result.mean["MRR@10"] == pytest.approx(0.7024, abs=TOLERANCE)
    assert result.mean["Recall@100"] == pytest.approx(0.4910, abs=TOLERANCE)


@pytest.mark.slow
def test_dl19_bi_encoder_reranking_reproduces_0_6425(dl19, tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path))
    experiment = run_grid(
        dl19,
        depths=[100],
        reranker="bi-encoder:all-minilm-l6",
        max_lengths=[256],
        dtype="fp32",
        latency_sample=1,
        progress=False,
    )
    reranked = experiment.best(reranked=True)
    assert reranked.evaluation.mean["nDCG@10"] == pytest.approx(0.6425, abs=TOLERANCE)
    assert experiment.result(Config("supplied", 100)).evaluation.mean["nDCG@10"] == pytest.approx(
        0.5058, abs=1e-4
    )


@pytest.mark.slow
def test_scifact_stage1_anchors(shared_data, monkeypatch):
    """Builds the SciFact index once (cached under $WINNOW_CACHE_DIR) and reuses it on later runs."""
    monkeypatch.setenv("WINNOW_DATA_DIR", str(shared_data))
    experiment = run_grid(
        load_dataset("scifact"), modes=["bm25", "dense", "rrf"], depths=[100], progress=False
    )
    scores = {
        mode: experiment.result(Config(mode, 100)).evaluation.mean["nDCG@10"]
        for mode in ("bm25", "dense", "rrf")
    }
    assert scores["bm25"] == pytest.approx(0.679, abs=TOLERANCE)
    assert scores["dense"] == pytest.approx(0.645, abs=TOLERANCE)
    assert scores["rrf"] == pytest.approx(0.715, abs=TOLERANCE)
