"""Training data readers: the shared layouts, BEIR qrels, bad lines and untrainable queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from winnow.training import RecipeError, TrainConfig, TrainingDataError, read_beir, read_jsonl
from winnow.training.data import BeirSplit, read_pubmedqa
from winnow.training.negatives import beir_groups
from winnow.training.trainer import load_sources


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_wikiqa_pairs_group_by_question_and_count_questions_without_answer(shared_data: Path) -> None:
    groups, report = read_jsonl(shared_data / "train" / "wikiqa" / "train_pairs.jsonl")
    # WikiQA train: 2,118 questions, 873 with at least one correct sentence (the paper's statistics).
    assert report.groups == len(groups) == 873
    assert report.skipped_no_positive == 2118 - 873
    assert sum(len(g.positives) for g in groups) == 1040
    first = groups[0]
    assert first.query == "how are glacier caves formed ?"
    assert first.positives == ("A glacier cave is a cave formed within the ice of a glacier .",)
    assert len(first.negatives) == 4


def test_grouped_file_matches_pairs_file(shared_data: Path) -> None:
    grouped, report = read_jsonl(shared_data / "train" / "trecqa" / "train_grouped.jsonl")
    pairs, _ = read_jsonl(shared_data / "train" / "trecqa" / "train_pairs.jsonl", require_negatives=True)
    assert report.groups == 78
    by_qid = {g.qid: g for g in pairs}
    for group in grouped:
        assert set(group.positives) == set(by_qid[group.qid].positives)
        assert set(group.negatives) == set(by_qid[group.qid].negatives)


def test_require_negatives_skips_and_counts(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "mine.jsonl",
        [
            json.dumps({"qid": "a", "query": "q a", "passage": "yes", "label": 1}),
            json.dumps({"qid": "a", "query": "q a", "passage": "no", "label": 0}),
            json.dumps({"qid": "b", "query": "q b", "passage": "only a positive", "label": 1}),
            json.dumps({"qid": "c", "query": "q c", "passage": "only a negative", "label": 0}),
        ],
    )
    groups, report = read_jsonl(path, require_negatives=True)
    assert [g.qid for g in groups] == ["a"]
    assert (report.skipped_no_positive, report.skipped_no_negative) == (1, 1)
    assert "1 skipped (no positive)" in str(report)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        (json.dumps({"passage": "p", "label": 1}), "missing field 'query'"),
        (json.dumps({"query": "q", "passage": "p", "label": "yes"}), "field 'label' must be a number"),
        (json.dumps({"query": "q", "passage": "p", "label": 3}), "field 'label' must be a number"),
        (json.dumps({"query": "q", "positives": "one"}), "field 'positives' must be a list of strings"),
        (json.dumps({"query": "q", "text": "p"}), "needs either 'passage' and 'label'"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    good = json.dumps({"query": "q", "passage": "p", "label": 1})
    path = write_lines(tmp_path / "bad.jsonl", [good, "", line])
    with pytest.raises(TrainingDataError) as caught:
        read_jsonl(path)
    assert f"{path}:3:" in str(caught.value)
    assert message in str(caught.value)


def test_same_qid_with_two_query_texts_is_an_error(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "clash.jsonl",
        [
            json.dumps({"qid": "1", "query": "first", "passage": "p", "label": 1}),
            json.dumps({"qid": "1", "query": "second", "passage": "p", "label": 0}),
        ],
    )
    with pytest.raises(TrainingDataError, match=r"clash.jsonl:2: qid '1' was used before"):
        read_jsonl(path)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nothing\.jsonl"):
        read_jsonl(tmp_path / "nothing.jsonl")


def test_scifact_train_qrels_with_crlf(shared_data: Path) -> None:
    split = read_beir(shared_data / "beir" / "scifact", "train")
    assert len(split.corpus) == 5183
    assert len(split.qrels) == 809
    assert sum(len(docs) for docs in split.qrels.values()) == 919
    assert all(not d.endswith("\r") for docs in split.qrels.values() for d in docs)


def test_beir_qrels_bad_grade_names_line(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    write_lines(tmp_path / "corpus.jsonl", [json.dumps({"_id": "d1", "title": "T", "text": "body"})])
    write_lines(tmp_path / "queries.jsonl", [json.dumps({"_id": "q1", "text": "query"})])
    (tmp_path / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\r\nq1\td1\thigh\r\n")
    with pytest.raises(TrainingDataError, match=r"train\.tsv:2: relevance grade 'high' is not an integer"):
        read_beir(tmp_path, "train")


def test_mined_negatives_skip_judged_documents(shared_data: Path) -> None:
    split = read_beir(shared_data / "beir" / "scifact", "train")
    groups, report = beir_groups(split, "scifact", depth=20, queries=slice(0, 40))
    assert report.groups == len(groups) == 40
    for group in groups:
        judged = {split.corpus[d] for d in split.qrels[group.qid]}
        assert set(group.positives) <= judged
        assert not judged & set(group.negatives)
        assert len(group.negatives) >= 20 - len(judged)


def test_skip_and_max_queries_split_one_qrels_file_into_disjoint_sets(shared_data: Path) -> None:
    scifact = str(shared_data / "beir" / "scifact")
    dev, _ = load_sources([{"beir": scifact, "depth": 5, "max_queries": 30}], require_negatives=True)
    train, _ = load_sources([{"beir": scifact, "depth": 5, "skip_queries": 30}], require_negatives=True)
    dev_ids, train_ids = {g.qid for g in dev}, {g.qid for g in train}
    assert len(dev_ids) == 30 and not dev_ids & train_ids
    assert len(dev_ids | train_ids) == len(read_beir(scifact, "train").qrels)
    with pytest.raises(RecipeError, match="skip_queries"):
        TrainConfig(data=[{"beir": scifact, "skip_queries": -1}])


def test_beir_query_without_positive_in_corpus_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "qrels").mkdir()
    write_lines(
        tmp_path / "corpus.jsonl",
        [json.dumps({"_id": f"d{i}", "title": "", "text": f"apple pie number {i}"}) for i in range(5)],
    )
    write_lines(
        tmp_path / "queries.jsonl",
        [json.dumps({"_id": "q1", "text": "apple pie"}), json.dumps({"_id": "q2", "text": "apple"})],
    )
    (tmp_path / "qrels" / "train.tsv").write_text(
        "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\tgone\t1\nq2\td2\t0\n"
    )
    groups, report = beir_groups(read_beir(tmp_path, "train"), "tiny", depth=5)
    assert [g.qid for g in groups] == ["q1"]
    assert report.skipped_no_positive == 1
    assert groups[0].positives == ("apple pie number 1",)
    assert len(groups[0].negatives) == 4


@pytest.mark.parametrize("mining", ["dense", "hybrid"])
def test_negatives_mined_with_winnows_own_stage1(tmp_path: Path, monkeypatch, mining: str) -> None:
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "cache"))
    corpus = {
        "d0": "Tides are caused by the moon's gravity pulling on the oceans.",
        "d1": "The ocean rises and falls twice a day.",
        "d2": "Sea level changes along the coast follow the lunar cycle.",
        "d3": "Bread is baked from flour, water and yeast.",
        "d4": "A violin has four strings.",
    }
    split = BeirSplit(corpus, {"q1": "what causes tides"}, {"q1": {"d0": 1, "d1": 0}})
    groups, report = beir_groups(split, "tides", depth=3, mining=mining, name="tides")
    assert report.groups == 1 and groups[0].positives == (corpus["d0"],)
    # The judged d0 and d1 are never negatives; the nearest unjudged passage about the sea comes first.
    assert groups[0].negatives[0] == corpus["d2"]
    assert not {corpus["d0"], corpus["d1"]} & set(groups[0].negatives)
    assert any(path.name.startswith("tides-") for path in (tmp_path / "cache" / "eval" / "index").iterdir())
    with pytest.raises(ValueError, match="mining must be one of"):
        beir_groups(split, "tides", mining="bm26")


def test_pubmedqa_train_and_test_are_disjoint_halves_with_their_own_abstracts(shared_data: Path) -> None:
    folder = shared_data / "qa" / "pubmedqa"
    train, test = read_pubmedqa(folder, "train"), read_pubmedqa(folder, "test")
    official_test = json.loads((folder / "test_ground_truth.json").read_text(encoding="utf-8"))
    assert len(train.queries) == len(test.queries) == 500
    assert set(test.queries) == set(official_test) and not set(train.queries) & set(official_test)
    assert set(train.corpus) == set(train.queries)  # no test abstract, not even as a negative
    assert all(train.qrels[pmid] == {pmid: 1} for pmid in train.queries)
    assert train.queries["10808977"] == "Can tailored interventions increase mammography use among HMO women?"
    assert train.corpus["10808977"].startswith("Telephone counseling and tailored print communications have")
    assert "21645374" in test.queries  # the file's first question is an official test question


def test_pubmedqa_source_trains_each_question_on_its_abstract(shared_data: Path) -> None:
    folder = shared_data / "qa" / "pubmedqa"
    groups, reports = load_sources(
        [{"pubmedqa": str(folder), "depth": 5, "max_queries": 4}], require_negatives=True
    )
    split = read_pubmedqa(folder, "train")
    assert [g.qid for g in groups] == list(split.queries)[:4] and reports[0].groups == 4
    for group in groups:
        assert group.positives == (split.corpus[group.qid],)
        assert group.negatives and split.corpus[group.qid] not in group.negatives


def test_pubmedqa_bad_input_is_named(tmp_path: Path) -> None:
    with pytest.raises(TrainingDataError, match="PubMedQA splits are train, test, not 'dev'"):
        read_pubmedqa(tmp_path, "dev")
    with pytest.raises(FileNotFoundError, match=r"ori_pqal\.json"):
        read_pubmedqa(tmp_path, "train")
    (tmp_path / "ori_pqal.json").write_text(json.dumps({"1": {"QUESTION": "why?", "CONTEXTS": "not a list"}}))
    (tmp_path / "test_ground_truth.json").write_text("{}")
    with pytest.raises(TrainingDataError, match="question 1: field 'CONTEXTS' must be a list of strings"):
        read_pubmedqa(tmp_path, "train")
    (tmp_path / "test_ground_truth.json").write_text("[]")
    with pytest.raises(TrainingDataError, match="must be a JSON object keyed by PubMed id"):
        read_pubmedqa(tmp_path, "train")
    with pytest.raises(RecipeError, match="exactly one of 'path', 'beir', 'pubmedqa'"):
        TrainConfig(data=[{"beir": "x", "pubmedqa": str(tmp_path)}])
