"""The ranx glue against values computed by hand on tiny qrels."""

from __future__ import annotations

import math

import pytest

from winnow.evaluation.metrics import NoOverlapWarning, evaluate, ranx_name

LOG3 = math.log2(3)


def test_binary_metrics_match_hand_computation():
    qrels = {"q1": {"d1": 1, "d3": 1}}
    result = evaluate(qrels, {"q1": ["d2", "d1", "d3", "d4"]}, ["nDCG@3", "MRR@10", "P@5", "MAP", "Recall@5"])
    ideal = 1 + 1 / LOG3
    assert result.mean["nDCG@3"] == pytest.approx((1 / LOG3 + 1 / 2) / ideal)
    assert result.mean["MRR@10"] == pytest.approx(0.5)
    assert result.mean["P@5"] == pytest.approx(2 / 5)
    assert result.mean["MAP"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert result.mean["Recall@5"] == pytest.approx(1.0)
    assert result.valid


def test_graded_ndcg_uses_linear_gain_and_threshold_only_touches_binary_metrics():
    qrels = {"q": {"a": 3, "b": 1, "c": 0}}
    run = {"q": ["b", "a", "c"]}
    strict = evaluate(qrels, run, ["nDCG@3", "MRR@10", "Recall@1"], relevance_threshold=2)
    lenient = evaluate(qrels, run, ["nDCG@3", "MRR@10", "Recall@1"], relevance_threshold=1)
    expected_ndcg = (1 + 3 / LOG3) / (3 + 1 / LOG3)
    assert strict.mean["nDCG@3"] == pytest.approx(expected_ndcg)
    assert lenient.mean["nDCG@3"] == pytest.approx(expected_ndcg)
    assert strict.mean["MRR@10"] == pytest.approx(0.5)  # "b" (grade 1) does not count at threshold 2
    assert lenient.mean["MRR@10"] == pytest.approx(1.0)
    assert strict.mean["Recall@1"] == 0.0
    assert lenient.mean["Recall@1"] == pytest.approx(0.5)
    assert ranx_name("MRR@10", 2) == "mrr@10-l2" and ranx_name("nDCG@10", 2) == "ndcg@10"


def test_given_order_is_kept_even_when_scores_tie():
    qrels = {"q": {"b": 1}}
    result = evaluate(qrels, {"q": [("a", 1.0), ("b", 1.0)]}, ["MRR@10"])
    assert result.mean["MRR@10"] == pytest.approx(0.5)


def test_unranked_judged_queries_score_zero_and_count_in_the_mean():
    qrels = {"q1": {"d1": 1}, "q2": {"d2": 1}}
    result = evaluate(qrels, {"q1": ["d1"]}, ["MRR@10"])
    assert result.per_query == {"q1": {"MRR@10": 1.0}, "q2": {"MRR@10": 0.0}}
    assert result.mean["MRR@10"] == pytest.approx(0.5)


def test_run_without_overlap_warns_and_is_not_valid():
    qrels = {"q1": {"d1": 1}}
    with pytest.warns(NoOverlapWarning, match="shares no document"):
        result = evaluate(qrels, {"q1": ["x", "y"]}, ["nDCG@10"])
    assert not result.valid
    with pytest.warns(NoOverlapWarning, match="query ids do not match"):
        result = evaluate(qrels, {"other": ["d1"]}, ["nDCG@10"])
    assert not result.valid


def test_unknown_metric_is_named():
    for bad in ("NDCG@10", "Recall", "MRR@ten"):
        with pytest.raises(ValueError, match=f"unknown metric '{bad}'"):
            evaluate({"q": {"d": 1}}, {"q": ["d"]}, [bad])
