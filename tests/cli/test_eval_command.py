"""`winnow eval` from the command line: the user jsonl format end to end, help, and bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from winnow.cli import app

runner = CliRunner()


def test_help_has_an_example():
    result = runner.invoke(app, ["eval", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "winnow eval dl19" in result.output


@pytest.mark.slow
def test_user_format_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "cache"))
    docs = {
        "tea": "Green tea contains catechins and caffeine.",
        "rain": "Rain forms when water vapour condenses into droplets.",
        "moon": "The Moon orbits the Earth every 27 days.",
        "bread": "Bread rises because yeast produces carbon dioxide.",
    }
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"id": k, "text": v}) + "\n" for k, v in docs.items()))
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"query": "why does bread rise with yeast", "relevant": ["bread"]})
        + "\n"
        + json.dumps({"query": "how often does the moon orbit the earth", "relevant": ["moon", "ghost"]})
        + "\n"
    )
    out = tmp_path / "report"
    args = ["eval", str(questions), "--corpus", str(corpus), "--reranker", "none", "--modes", "bm25"]
    result = runner.invoke(app, [*args, "--depths", "1,3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "unknown documents: 1" in result.output  # "ghost" is counted and reported
    data = json.loads((out / "results.json").read_text())
    assert [c["name"] for c in data["configurations"]] == ["bm25@1", "bm25@3"]
    assert data["configurations"][0]["metrics"]["MRR@10"] == 1.0  # BM25 puts each answer first
    assert data["dataset"]["issues"]["unknown_documents"]["examples"] == ["ghost"]
    assert (out / "summary.md").read_text().startswith("# Evaluation: questions")


def test_missing_file_exits_with_a_message_naming_it(tmp_path):
    (tmp_path / "set" / "qrels").mkdir(parents=True)
    (tmp_path / "set" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\td\t1\n")
    result = runner.invoke(app, ["eval", str(tmp_path / "set"), "--reranker", "none"])
    assert result.exit_code == 2
    assert "missing file" in result.output and "queries.jsonl" in result.output
    result = runner.invoke(app, ["eval", "dl19", "--depths", "ten"])
    assert result.exit_code == 2 and "comma-separated integers" in result.output
