"""The shipped recipes parse, and none trains on an evaluation set or on its own dev queries."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from winnow.training import TrainConfig

RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("*.yaml"))
KINDS = ("path", "beir", "pubmedqa")


def location(source: dict) -> tuple[str, str]:
    kind = next(k for k in KINDS if k in source)
    return source[kind], source.get("split", "train") if kind != "path" else ""


def query_range(source: dict) -> tuple[int, float]:
    skip = source.get("skip_queries", 0)
    limit = source.get("max_queries")
    return skip, math.inf if limit is None else skip + limit


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.stem)
def test_recipe_never_trains_on_test_sets_or_its_dev_queries(recipe: Path) -> None:
    config = TrainConfig.from_yaml(recipe)
    for source in config.data:
        where, split = location(source)
        assert split != "test", f"{recipe.name} trains on a test split: {source}"
        assert "msmarco_trec_dl" not in where and "test" not in Path(where).name, source
    for dev in config.dev:
        dev_start, dev_end = query_range(dev)
        for source in config.data:
            if location(source) == location(dev):
                start, end = query_range(source)
                assert end <= dev_start or dev_end <= start, f"{recipe.name}: {source} overlaps dev {dev}"


def test_overlap_check_catches_a_dev_slice_inside_the_training_slice() -> None:
    dev = {"beir": "scifact", "split": "train", "max_queries": 100}
    assert query_range(dev) == (0, 100)
    assert query_range({"beir": "scifact", "skip_queries": 100}) == (100, math.inf)
    start, end = query_range({"beir": "scifact", "skip_queries": 50})
    assert not (end <= 0 or 100 <= start)  # 50.. overlaps 0..100
    assert location(dev) == location({"beir": "scifact"})
