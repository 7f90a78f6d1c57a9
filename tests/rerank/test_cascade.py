"""Cascade: the first model prunes, the second reranks what is left, and indices still point at the input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from winnow.cli import app
from winnow.pipeline import Pipeline
from winnow.rerank import Cascade, Reranker

QUERY = "how does sqlite let readers and writers work at the same time?"
DOCUMENTS = [
    "SQLite's write-ahead log lets readers continue while a writer appends to the log.",
    "Bananas are a good source of potassium.",
    "In rollback-journal mode a writer locks the whole database file.",
    "The Eiffel Tower is in Paris.",
    "A checkpoint copies pages from the WAL file back into the database.",
    "Chess openings have names such as the Sicilian Defence.",
    "BUSY errors happen when a second writer waits longer than the busy timeout.",
    "Photosynthesis turns light into chemical energy.",
    "Readers in WAL mode see a snapshot of the database as of their first read.",
    "The Pacific is the largest ocean on Earth.",
    "PRAGMA journal_mode=WAL switches a database to write-ahead logging.",
    "Mount Everest is 8,849 metres high.",
]


@pytest.fixture(scope="module")
def first(minilm_cross_encoder: Path) -> Reranker:
    return Reranker(minilm_cross_encoder, cache=0)


@pytest.fixture(scope="module")
def second() -> Reranker:
    return Reranker("winnow-minilm-l6", cache=0)


def test_second_model_reranks_exactly_what_the_first_kept(first: Reranker, second: Reranker) -> None:
    cascade = Cascade(first, second, keep=5)
    ranking = cascade.rerank(QUERY, DOCUMENTS)
    kept = {r.index for r in first.rerank(QUERY, DOCUMENTS, top_k=5)}
    assert {r.index for r in ranking} == kept and len(ranking) == 5
    expected = second.score([(QUERY, DOCUMENTS[i]) for i in [r.index for r in ranking]])
    np.testing.assert_allclose([r.score for r in ranking], expected, rtol=1e-5, atol=1e-5)
    assert [r.score for r in ranking] == sorted((r.score for r in ranking), reverse=True)
    assert all(r.document is DOCUMENTS[r.index] for r in ranking)
    assert ranking.model == f"{first.model_name} > {second.model_name}"


def test_few_documents_skip_the_first_model(first: Reranker, second: Reranker) -> None:
    cascade = Cascade(first, second, keep=len(DOCUMENTS))
    direct = second.rerank(QUERY, DOCUMENTS, top_k=3)
    assert [(r.index, r.score) for r in cascade.rerank(QUERY, DOCUMENTS, top_k=3)] == [
        (r.index, r.score) for r in direct
    ]


def test_top_k_and_bad_input(first: Reranker, second: Reranker) -> None:
    cascade = Cascade(first, second, keep=4)
    assert len(cascade.rerank(QUERY, DOCUMENTS, top_k=2)) == 2
    with pytest.raises(ValueError, match="keep"):
        Cascade(first, second, keep=0)
    with pytest.raises(ValueError, match="top_k"):
        cascade.rerank(QUERY, DOCUMENTS, top_k=0)
    with pytest.raises(ValueError, match="query"):
        cascade.rerank("  ", DOCUMENTS)
    with pytest.raises(TypeError):
        cascade.rerank(QUERY, [{"no": "text"}] * 6)


def test_pipeline_takes_a_cascade_as_its_reranker(first: Reranker, second: Reranker) -> None:
    pipeline = Pipeline(None, Cascade(first, second, keep=4))
    response = pipeline.rerank(QUERY, [{"id": str(i), "text": t} for i, t in enumerate(DOCUMENTS)], top_k=3)
    assert len(response.results) == 3
    assert all(r.score is not None for r in response.results)


def test_cli_rerank_with_a_cascade(minilm_cross_encoder: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs.txt"
    docs.write_text("\n".join(DOCUMENTS), encoding="utf-8")
    result = CliRunner().invoke(
        app,
        [
            "rerank",
            QUERY,
            "--docs",
            str(docs),
            "--cascade",
            str(minilm_cross_encoder),
            "--cascade-keep",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines() if line.startswith("{")]
    assert len(rows) == 3 and [row["rank"] for row in rows] == [1, 2, 3]
    assert all(row["document"] == DOCUMENTS[row["index"]] for row in rows)
