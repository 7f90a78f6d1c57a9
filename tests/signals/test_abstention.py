"""Abstention: thresholds are checked, proposed from data, and the pipeline abstains exactly when no
candidate reaches the threshold, still showing the best one."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from winnow.pipeline import Pipeline
from winnow.rerank import Reranker
from winnow.signals import Signals
from winnow.signals.abstention import answer_stats, check_threshold, propose_threshold

DOCS = [
    {"id": "tls", "text": "TLS 1.3 completes a full handshake in one round trip."},
    {"id": "quic", "text": "QUIC combines the transport and TLS handshakes."},
    {"id": "banana", "text": "Bananas are rich in potassium."},
]
QUERY = "TLS handshake round trips"


@pytest.fixture(scope="module")
def reranker(minilm_cross_encoder: Path) -> Reranker:
    return Reranker(minilm_cross_encoder)


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf, "0.5", True, None])
def test_threshold_outside_0_1_is_an_error(bad, reranker: Reranker) -> None:
    with pytest.raises(ValueError, match="min_confidence must be"):
        check_threshold(bad)
    if bad is not None:
        with pytest.raises(ValueError, match="min_confidence must be"):
            Pipeline(None, reranker, min_confidence=bad)
    assert check_threshold(0) == 0.0 and check_threshold(1) == 1.0


def test_propose_threshold_picks_the_lowest_that_reaches_the_target() -> None:
    probabilities = [0.95, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3]
    relevant = [1, 1, 1, 0, 1, 0, 0, 0]
    proposal = propose_threshold(probabilities, relevant, 0.8)
    # answering down to 0.6 gives 4 of 5 right; down to 0.5 gives 4 of 6 (0.67)
    assert proposal.threshold == 0.6 and proposal.precision == 0.8 and proposal.answer_rate == 5 / 8
    assert proposal.reached and proposal.queries == 8
    assert answer_stats(probabilities, relevant, 0.6) == (0.8, 5 / 8)
    strict = propose_threshold(probabilities, relevant, 1.0)
    assert strict.threshold == 0.8 and strict.answer_rate == 3 / 8
    # ties cannot be split: both 0.9s are answered or neither
    tied = propose_threshold([0.9, 0.9, 0.5], [1, 0, 1], 0.9)
    assert not tied.reached and tied.threshold == 0.5 and tied.precision == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="target_precision"):
        propose_threshold(probabilities, relevant, 1.5)
    with pytest.raises(ValueError, match="one label per probability"):
        propose_threshold([0.5], [1, 0], 0.5)


def test_pipeline_abstains_only_when_no_candidate_reaches_the_threshold(reranker: Reranker) -> None:
    plain = Pipeline(None, reranker).rerank(QUERY, DOCS, top_k=3)
    best = max(r.probability for r in plain)
    assert plain.confident and plain.abstention is None

    at_best = Pipeline(None, reranker, min_confidence=best).rerank(QUERY, DOCS, top_k=2)
    assert at_best.confident and [r.doc_id for r in at_best] == [r.doc_id for r in plain][:2]

    above = float(np.nextafter(best, 2.0))
    assert above <= 1.0  # the fixture's probabilities sit inside (0, 1)
    refused = Pipeline(None, reranker, min_confidence=above).rerank(QUERY, DOCS, top_k=2)
    assert refused.results == [] and len(refused) == 0 and not refused.confident
    assert refused.abstention.threshold == above
    assert refused.abstention.best_probability == best
    assert refused.abstention.best.doc_id == plain[0].doc_id and refused.abstention.best.rank == 1
    assert "below the threshold" in refused.abstention.reason
    assert "signals_ms" in refused.timings

    everything = Pipeline(None, reranker, min_confidence=1.0)
    assert best < 1.0  # the fixture's probabilities sit inside (0, 1)
    assert not everything.rerank(QUERY, DOCS).confident
    assert Pipeline(None, reranker, min_confidence=0.0).rerank(QUERY, DOCS).confident


def test_abstention_with_no_candidates_and_with_signals(reranker: Reranker, tmp_path: Path) -> None:
    from winnow.records import Document
    from winnow.retrieve import Index

    with Index.create(tmp_path / "index", chunk_tokens=None) as index:
        index.add([Document("a", "Sourdough needs a starter.", source="kb/a.md")], progress=False)
        nothing = Pipeline(index, reranker, mode="bm25", min_confidence=0.5).search("quantum chromodynamics")
        assert not nothing.confident and nothing.abstention.best is None
        assert (
            nothing.abstention.best_probability is None
            and nothing.abstention.reason == "no candidates were found"
        )

    # Abstention looks at the relevance probability, not at a blended score that signals can lift.
    signals = Signals(relevance_weight=0.1, authority_weight=1, default_authority=1.0)
    plain = Pipeline(None, reranker).rerank(QUERY, DOCS, top_k=1)
    above = float(np.nextafter(plain[0].probability, 2.0))
    assert above <= 1.0  # the fixture's probabilities sit inside (0, 1)
    response = Pipeline(None, reranker, signals=signals, min_confidence=above).rerank(QUERY, DOCS)
    assert not response.confident and response.abstention.best.final_score == plain[0].probability
