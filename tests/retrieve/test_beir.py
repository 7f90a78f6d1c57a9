"""One BEIR reader for indexing, evaluation and training: the same texts from the same files, and the
same file:line errors in each caller's own error type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from winnow.evaluation.datasets import DatasetError, load_beir
from winnow.records import title_and_text
from winnow.retrieve.beir import read_qrels, read_queries
from winnow.retrieve.ingest import load_beir_corpus
from winnow.training import TrainingDataError, read_beir


def test_index_evaluation_and_training_read_scifact_alike(shared_data: Path) -> None:
    folder = shared_data / "beir" / "scifact"
    documents = list(load_beir_corpus(folder))
    evaluation = load_beir(folder, "test")
    training = read_beir(folder, "train")
    assert len(documents) == len(evaluation.corpus) == len(training.corpus) == 5183
    lines = (folder / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    for document, record in zip(documents, records, strict=True):
        text = title_and_text(document.title, document.text)
        assert evaluation.corpus[document.id] == training.corpus[document.id] == text
        # What evaluation and training each joined before they shared the reader: every published
        # figure rests on these texts.
        title = record["title"].strip()
        assert text == (f"{title} {record['text']}".strip() if title else record["text"])
        assert text == (f"{title} {record['text'].strip()}" if title else record["text"].strip())
    queries = read_queries(folder / "queries.jsonl")
    assert training.queries == queries and len(queries) == 1109
    assert evaluation.queries == {q: queries[q] for q in evaluation.qrels} and len(evaluation.queries) == 300
    assert evaluation.qrels == read_qrels(folder / "qrels" / "test.tsv")
    assert sum(len(docs) for docs in evaluation.qrels.values()) == 339


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"_id": "d2", "title": "T"}', r"corpus\.jsonl:2: missing field 'text'"),
        ('{"title": "T", "text": "x"}', r"corpus\.jsonl:2: missing field '_id' or 'id'"),
        ('{"_id": "d1", "text": "again"}', r"corpus\.jsonl:2: duplicate document id 'd1' \(first on line 1"),
        ('{"_id": "", "text": "x"}', r"corpus\.jsonl:2: document id must be a non-empty string"),
        ("[1, 2]", r"corpus\.jsonl:2: expected a JSON object"),
    ],
)
def test_a_bad_corpus_line_is_named_in_each_callers_error(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "body"}\n' + line + "\n")
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "query"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
    with pytest.raises(DatasetError, match=message):
        load_beir(tmp_path, "test")
    with pytest.raises(TrainingDataError, match=message):
        read_beir(tmp_path, "test")
    with pytest.raises(ValueError, match=message):
        list(load_beir_corpus(tmp_path))


def test_a_missing_file_or_an_unknown_judged_query_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "text": "body"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "query"}\n')
    with pytest.raises(TrainingDataError, match=r"missing file: .*qrels/train\.tsv"):
        read_beir(tmp_path, "train")
    (tmp_path / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq7\td1\t1\n")
    with pytest.raises(TrainingDataError, match=r"1 judged queries are not in .*queries\.jsonl \(e.g. 'q7'"):
        read_beir(tmp_path, "train")
    # Evaluation counts such queries instead of stopping: the same reader, the caller's policy.
    assert load_beir(tmp_path, "train").issues["unknown_queries"]["count"] == 1
