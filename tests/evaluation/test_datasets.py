"""Loaders: BEIR folders, TREC runs and qrels, the user jsonl format, and their bad-input behaviour."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from winnow.evaluation.datasets import (
    DatasetError,
    load_beir,
    load_dataset,
    load_rerank_set,
    load_run,
    load_user_set,
)
from winnow.retrieve.beir import read_corpus, read_qrels


def _write_beir(folder: Path, qrels_lines: list[str]) -> Path:
    (folder / "qrels").mkdir(parents=True)
    docs = [
        {"_id": "d1", "title": "Cats", "text": "Cats purr."},
        {"_id": "d2", "title": "", "text": "Dogs bark."},
    ]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    queries = [{"_id": "q1", "text": "do cats purr"}, {"_id": "q2", "text": "dogs"}]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    # CRLF endings, as in the official SciFact qrels.
    (folder / "qrels" / "test.tsv").write_bytes(
        "\r\n".join(["query-id\tcorpus-id\tscore", *qrels_lines]).encode()
    )
    return folder


def test_beir_folder_loads_with_crlf_qrels_and_titles(tmp_path):
    evalset = load_beir(_write_beir(tmp_path / "set", ["q1\td1\t1", "q2\td2\t1"]))
    assert evalset.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    assert evalset.corpus == {"d1": "Cats Cats purr.", "d2": "Dogs bark."}
    assert evalset.issues == {}
    assert not evalset.graded


def test_unknown_queries_and_documents_are_counted_not_silently_dropped(tmp_path):
    evalset = load_beir(
        _write_beir(tmp_path / "set", ["q1\td1\t1", "q1\tghost\t1", "q9\td2\t1", "q9\td1\t1"])
    )
    assert evalset.issues["unknown_queries"]["count"] == 1
    assert evalset.issues["unknown_queries"]["judgments"] == 2
    assert evalset.issues["unknown_documents"]["count"] == 1
    assert evalset.issues["unknown_documents"]["examples"] == ["ghost"]
    assert "q9" not in evalset.queries
    assert evalset.qrels["q1"] == {"d1": 1, "ghost": 1}  # kept: it counts against recall


def test_missing_file_names_the_file(tmp_path):
    folder = _write_beir(tmp_path / "set", ["q1\td1\t1"])
    (folder / "queries.jsonl").unlink()
    with pytest.raises(DatasetError, match=r"missing file: .*queries\.jsonl"):
        load_beir(folder)
    with pytest.raises(DatasetError, match=r"missing file: .*qrels/dev\.tsv"):
        load_beir(folder, split="dev")


def test_malformed_lines_name_file_line_and_field(tmp_path):
    folder = _write_beir(tmp_path / "set", ["q1\td1\t1", "q2\td2\tyes"])
    with pytest.raises(DatasetError, match=r"test\.tsv:3: relevance grade 'yes' is not an integer"):
        load_beir(folder)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text('{"_id": "a", "text": "x"}\n{"_id": "b"}\n')
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:2: missing field 'text'"):
        read_corpus(corpus, DatasetError)
    corpus.write_text('{"_id": "a", "text": "x"}\n{"_id": "a", "text": "y"}\n')
    (tmp_path / "q.jsonl").write_text('{"query": "x", "relevant": ["a"]}\n')
    with pytest.raises(DatasetError, match=r"corpus\.jsonl:2: duplicate document id 'a' \(first on line 1\)"):
        load_user_set(tmp_path / "q.jsonl", corpus)


def test_trec_run_keeps_rank_order_and_rejects_duplicates(tmp_path):
    run = tmp_path / "run.txt"
    run.write_text("q1 Q0 b 2 5.0 x\nq1 Q0 a 1 5.0 x\nq2 Q0 c 1 1.5 x\n")
    assert load_run(run) == {"q1": [("a", 5.0), ("b", 5.0)], "q2": [("c", 1.5)]}
    run.write_text("q1 Q0 a 1 5.0 x\nq1 Q0 a 2 4.0 x\n")
    with pytest.raises(DatasetError, match=r"run\.txt:2: document 'a' listed twice for query 'q1'"):
        load_run(run)
    qrels = tmp_path / "qrels.txt"
    qrels.write_text("q1 0 a 2\nq1 0 b 0\n")
    assert read_qrels(qrels, DatasetError) == {"q1": {"a": 2, "b": 0}}


def test_rerank_set_reports_queries_without_candidates(tmp_path):
    folder = _write_beir(tmp_path / "set", ["q1\td1\t1", "q2\td2\t1"])
    run = tmp_path / "run.txt"
    run.write_text("q1 Q0 d2 1 3.0 bm25\nq1 Q0 d1 2 2.0 bm25\nq7 Q0 d1 1 1.0 bm25\n")
    evalset = load_rerank_set(
        run, folder / "qrels/test.tsv", folder / "queries.jsonl", folder / "corpus.jsonl"
    )
    assert evalset.candidates == {"q1": [("d2", 3.0), ("d1", 2.0)], "q2": []}
    assert evalset.issues["queries_without_candidates"]["count"] == 1
    assert evalset.issues["unjudged_run_queries"]["examples"] == ["q7"]
    run.write_text("q1 Q0 nowhere 1 3.0 bm25\n")
    with pytest.raises(DatasetError, match="1 candidate documents have no text"):
        load_rerank_set(run, folder / "qrels/test.tsv", folder / "queries.jsonl", folder / "corpus.jsonl")


def test_user_format_lists_graded_dicts_and_errors(tmp_path):
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text('{"id": "a", "text": "alpha"}\n{"id": "b", "text": "beta"}\n')
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        '{"query": "first?", "relevant": ["a"]}\n\n{"id": "x", "query": "b?", "relevant": {"b": 2}}\n'
    )
    evalset = load_user_set(questions, corpus)
    assert evalset.queries == {"q1": "first?", "x": "b?"}
    assert evalset.qrels == {"q1": {"a": 1}, "x": {"b": 2}}
    assert evalset.graded
    questions.write_text('{"query": "first?", "relevant": []}\n')
    with pytest.raises(DatasetError, match=r"questions\.jsonl:1: field 'relevant' must be a non-empty list"):
        load_user_set(questions, corpus)
    with pytest.raises(DatasetError, match="needs --corpus"):
        load_dataset(questions)


def test_short_names_resolve_to_the_shared_data(shared_data, monkeypatch):
    monkeypatch.setenv("WINNOW_DATA_DIR", str(shared_data))
    scifact = load_dataset("scifact")
    assert (len(scifact.queries), len(scifact.corpus)) == (300, 5183)
    assert sum(len(d) for d in scifact.qrels.values()) == 339
    assert scifact.issues == {} and scifact.relevance_threshold == 1
    nfcorpus = load_dataset("nfcorpus")
    assert len(nfcorpus.queries) == 323 and nfcorpus.graded
    dl19 = load_dataset("dl19")
    assert len(dl19.queries) == 43 and dl19.relevance_threshold == 2
    assert all(len(c) == 100 for c in dl19.candidates.values())
    # Judgments of passages outside the BM25 top-100 are kept and reported, not dropped.
    assert dl19.issues["unknown_documents"]["count"] > 0
    with pytest.raises(DatasetError, match="not a file, not a folder, not a short name"):
        load_dataset("no-such-set")
