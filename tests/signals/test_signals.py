"""Production signals: freshness, authority and diversity change the order exactly as configured."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from winnow.pipeline import Pipeline
from winnow.records import Document
from winnow.rerank import Reranker
from winnow.retrieve import Index
from winnow.retrieve.dense import shared_embedder
from winnow.signals import Signals, combine
from winnow.signals.combine import SignalInput
from winnow.signals.diversity import diversify
from winnow.signals.freshness import DateCounts, freshness

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def _days_ago(days: float) -> str:
    return (NOW - timedelta(days=days)).isoformat()


def test_freshness_halves_every_half_life_and_counts_bad_dates() -> None:
    counts = DateCounts()
    assert freshness(_days_ago(0), NOW, 30) == 1.0
    assert freshness(_days_ago(30), NOW, 30) == pytest.approx(0.5)
    assert freshness(_days_ago(90), NOW, 30) == pytest.approx(0.125)
    assert freshness(_days_ago(-5), NOW, 30) == 1.0  # a future date is not fresher than today
    assert freshness(None, NOW, 30, "neutral", 0.5, counts) == 0.5
    assert freshness("last Tuesday", NOW, 30, "oldest", 0.5, counts, "doc-7") == 0.0
    assert freshness({"year": 2020}, NOW, 30, "neutral", 0.3, counts) == 0.3
    assert (counts.missing, counts.malformed) == (1, 2)
    assert counts.examples[0].startswith("doc-7: ")


def test_defaults_leave_relevance_order_and_scores_alone() -> None:
    items = [
        SignalInput(0.2, "a", "d1", updated_at=_days_ago(1)),
        SignalInput(0.9, "b", "d2", updated_at=None),
        SignalInput(0.5, "c", "d3", updated_at="garbage"),
    ]
    outcome = combine(items, Signals(now=NOW))
    assert [c.index for c in outcome.results] == [1, 2, 0]
    assert [c.final_score for c in outcome.results] == [0.9, 0.5, 0.2]
    assert not Signals().reorders and not Signals(relevance_weight=3.0).reorders


def test_freshness_and_authority_reorder_as_weighted() -> None:
    items = [
        SignalInput(0.80, "old, trusted", "old", source="wiki/handbook/a.md", updated_at=_days_ago(365)),
        SignalInput(0.70, "new, untrusted", "new", source="forum/post.html", updated_at=_days_ago(0)),
        SignalInput(0.75, "undated", "undated", source="misc.txt", updated_at=None, authority=0.9),
    ]
    fresh = combine(items, Signals(relevance_weight=1, freshness_weight=1, half_life_days=30, now=NOW))
    # new: (0.70 + 1.0) / 2 = 0.85; undated: (0.75 + 0.5) / 2 = 0.625; old: (0.80 + 0.5**(365/30)) / 2
    assert [c.index for c in fresh.results] == [1, 2, 0]
    assert fresh.results[0].final_score == pytest.approx(0.85)
    assert fresh.results[1].components == {"relevance": 0.75, "freshness": 0.5, "authority": 0.9}
    assert (fresh.dates.missing, fresh.dates.malformed) == (1, 0)

    oldest = combine(
        items, Signals(freshness_weight=1, missing_date="oldest", half_life_days=30, now=NOW)
    ).results
    assert [c.index for c in oldest] == [1, 0, 2]  # the undated one now counts as oldest of all

    patterns = {"*/handbook/*": 1.0, "forum/*": 0.0}
    trusted = combine(items, Signals(authority_weight=1, authority_patterns=patterns, now=NOW))
    # old: (0.8 + 1.0)/2 = 0.9; undated: stored authority 0.9 -> 0.825; new: (0.7 + 0.0)/2 = 0.35
    assert [c.index for c in trusted.results] == [0, 2, 1]
    assert [c.components["authority"] for c in trusted.results] == [1.0, 0.9, 0.0]
    assert trusted.results[2].final_score == pytest.approx(0.35)
    # no pattern and no stored weight: the default authority
    plain = combine(
        [SignalInput(0.5, "x", source="x.txt")], Signals(authority_weight=1, default_authority=0.2)
    )
    assert plain.results[0].components["authority"] == 0.2


def test_mmr_demotes_a_near_duplicate_and_the_cap_limits_chunks_per_document() -> None:
    embedder = shared_embedder("all-minilm-l6")
    texts = [
        "Preheat the oven to 200 C and roast the potatoes for 40 minutes.",
        "Preheat your oven to 200 degrees C, then roast the potatoes for forty minutes.",
        "Potatoes can also be boiled in salted water for about 20 minutes.",
    ]
    items = [SignalInput(p, t, f"d{i}") for i, (p, t) in enumerate(zip([0.9, 0.88, 0.6], texts, strict=True))]
    plain = combine(items, Signals())
    assert [c.index for c in plain.results] == [0, 1, 2]
    diverse = combine(items, Signals(mmr_lambda=0.5), embed=embedder.encode)
    assert [c.index for c in diverse.results] == [0, 2, 1]
    duplicate = diverse.results[2].components
    assert duplicate["redundancy"] > 0.8 and duplicate["relevance"] == 0.88
    assert diverse.results[0].components["redundancy"] == 0.0

    chunks = [
        SignalInput(p, f"t{i}", doc)
        for i, (p, doc) in enumerate([(0.9, "A"), (0.8, "A"), (0.7, "A"), (0.6, "B")])
    ]
    capped = combine(chunks, Signals(max_chunks_per_doc=2))
    assert [c.index for c in capped.results] == [0, 1, 3]
    assert [p.index for p in diversify([0.9, 0.8, 0.7], None, 1.0, ["A", "A", "A"], 1, None)] == [0]


def test_bad_signal_settings_are_errors() -> None:
    with pytest.raises(ValueError, match="freshness_weight must not be negative"):
        Signals(freshness_weight=-0.1)
    with pytest.raises(ValueError, match="at least one"):
        Signals(relevance_weight=0)
    with pytest.raises(ValueError, match="half_life_days"):
        Signals(half_life_days=0)
    with pytest.raises(ValueError, match="missing_date policy"):
        Signals(missing_date="newest")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="authority weight for 'x\\*'"):
        Signals(authority_patterns={"x*": 1.5})
    with pytest.raises(ValueError, match="mmr_lambda"):
        Signals(mmr_lambda=1.5)
    with pytest.raises(ValueError, match="max_chunks_per_doc"):
        Signals(max_chunks_per_doc=0)
    with pytest.raises(ValueError, match="needs an embedder"):
        combine([SignalInput(0.5, "a")], Signals(mmr_lambda=0.5))


# -- through the pipeline, on an index of hand-made documents -------------------------------------------
DOCS = [
    Document(
        "kb-old",
        "To reset a router, hold the reset button for ten seconds.",
        source="kb/router.md",
        updated_at=datetime(2020, 1, 1, tzinfo=UTC),
        authority=0.9,
    ),
    Document(
        "blog-new",
        "Router reset: press and hold the reset button about ten seconds.",
        source="blog/r.html",
        updated_at=datetime(2025, 5, 30, tzinfo=UTC),
        authority=0.2,
    ),
    Document("forum-undated", "My router reset worked after holding the button.", source="forum/t1.html"),
    Document(
        "kb-mid",
        "Resetting restores factory settings; back up the router configuration first.",
        source="kb/backup.md",
        updated_at=datetime(2024, 6, 1, tzinfo=UTC),
        authority=0.8,
    ),
]


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory):
    with Index.create(tmp_path_factory.mktemp("signals") / "index", chunk_tokens=None) as idx:
        idx.add(DOCS, progress=False)
        yield idx


@pytest.fixture(scope="module")
def reranker(minilm_cross_encoder: Path) -> Reranker:
    return Reranker(minilm_cross_encoder)


QUERY = "how do I reset my router"


def test_pipeline_default_signals_change_nothing(index: Index, reranker: Reranker) -> None:
    plain = Pipeline(index, reranker).search(QUERY, candidates=4, top_k=4)
    defaults = Pipeline(index, reranker, signals=Signals()).search(QUERY, candidates=4, top_k=4)
    assert [r.chunk_id for r in defaults] == [r.chunk_id for r in plain]
    for a, b in zip(plain, defaults, strict=True):
        assert a.score == b.score and a.probability == b.probability == a.final_score == b.final_score
        assert a.components == b.components == {"relevance": a.probability}
    assert "signals_ms" in defaults.timings and "signals_ms" not in plain.timings
    assert defaults.date_issues == {}


def test_pipeline_orders_by_date_authority_and_shows_components(index: Index, reranker: Reranker) -> None:
    by_date = Signals(relevance_weight=0, freshness_weight=1, half_life_days=365, now=NOW)
    response = Pipeline(index, reranker, signals=by_date).search(QUERY, candidates=4, top_k=4)
    # newest first; the undated document gets the neutral 0.5, between 2024-06 (~0.5) and 2020
    assert [r.doc_id for r in response] == ["blog-new", "kb-mid", "forum-undated", "kb-old"]
    assert response.date_issues == {"missing": 1, "malformed": 0}
    for result in response:
        assert set(result.components) == {"relevance", "freshness", "authority"}
        assert result.final_score == pytest.approx(result.components["freshness"])
        assert result.components["relevance"] == result.probability

    by_authority = Signals(relevance_weight=0, authority_weight=1, authority_patterns={"forum/*": 1.0})
    ranked = Pipeline(index, reranker, signals=by_authority).search(QUERY, candidates=4, top_k=2)
    assert [r.doc_id for r in ranked] == ["forum-undated", "kb-old"]  # pattern 1.0, then stored 0.9

    blended = Signals(relevance_weight=1, freshness_weight=0.5, authority_weight=0.5, now=NOW)
    mixed = Pipeline(index, reranker, signals=blended).search(QUERY, candidates=4, top_k=4)
    finals = [r.final_score for r in mixed]
    assert finals == sorted(finals, reverse=True)
    for r in mixed:
        parts = r.components
        expected = (parts["relevance"] + 0.5 * parts["freshness"] + 0.5 * parts["authority"]) / 2
        assert r.final_score == pytest.approx(expected)


def test_pipeline_mmr_uses_the_index_embedder(index: Index, reranker: Reranker) -> None:
    pipeline = Pipeline(index, reranker, signals=Signals(mmr_lambda=0.3))
    response = pipeline.search(QUERY, candidates=4, top_k=4)
    assert len(response) == 4 and all("redundancy" in r.components for r in response)
    assert response[0].components["redundancy"] == 0.0
    external = [{"id": "a", "text": "one"}, {"id": "b", "text": "two"}]
    with pytest.raises(ValueError, match="embedder"):
        Pipeline(None, reranker, signals=Signals(mmr_lambda=0.3))
    # A caller's embedder that sees every text as the same vector: every later pick is fully redundant.
    same = Signals(mmr_lambda=0.3, embedder=lambda texts: np.ones((len(texts), 4)) / 2)
    chosen = Pipeline(None, reranker, signals=same).rerank("q", external, top_k=2)
    assert {r.doc_id for r in chosen} == {"a", "b"}
    assert chosen[1].components["redundancy"] == pytest.approx(1.0)


def test_bad_dates_in_external_candidates_are_counted_not_fatal(reranker: Reranker) -> None:
    candidates = [
        {"id": "good", "text": "Router reset guide.", "metadata": {"updated_at": "2025-05-01"}},
        {"id": "bad", "text": "Router reset tips.", "updated_at": "31/02/2024"},
        {"id": "none", "text": "Router reset notes."},
        {"id": "type", "text": "Router reset FAQ.", "metadata": {"updated_at": ["2024"]}},
    ]
    signals = Signals(freshness_weight=1, now=NOW)
    response = Pipeline(None, reranker, signals=signals).rerank(QUERY, candidates, top_k=4)
    assert response.date_issues == {"missing": 1, "malformed": 2}
    assert len(response) == 4
    assert {r.doc_id: r.components["freshness"] for r in response}["bad"] == 0.5
    with pytest.raises(ValueError, match="give a reranker"):
        Pipeline(None, None, signals=signals)
