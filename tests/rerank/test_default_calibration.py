"""The default model ships a calibration, and `winnow search` / `winnow ask` abstain by default below
DEFAULT_MIN_CONFIDENCE: on a stopword-only query and an out-of-domain question, not on an in-domain one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from winnow.answer import ask as answer_question
from winnow.cli import app
from winnow.models import resolve_model
from winnow.models.fingerprint import model_fingerprint
from winnow.pipeline import Pipeline
from winnow.rerank import Reranker
from winnow.rerank.calibration import (
    CALIBRATION_FILE,
    PlattCalibrator,
    find_calibrator,
    load_calibrator,
    save_calibrator,
)
from winnow.retrieve import Index
from winnow.signals.abstention import DEFAULT_MIN_CONFIDENCE, effective_min_confidence

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "winnow" / "data" / "sample_corpus"
STOPWORDS = "the of and to a in is it"
OUT_OF_DOMAIN = "what is the best recipe for chocolate cake?"
IN_DOMAIN = "how does TLS 1.3 reduce handshake round trips?"
ABSTAINS = "--min-confidence 0"
runner = CliRunner()


@pytest.fixture(autouse=True)
def own_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """A calibration the user fitted into their own cache would take precedence over the shipped one."""
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "winnow-cache"))
    for name in ("WINNOW_LLM_BASE_URL", "WINNOW_LLM_MODEL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("default-calibration") / "index"
    result = runner.invoke(
        app, ["index", str(SAMPLE / "networking"), "--index", str(folder), "--chunk-tokens", "0"]
    )
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture(scope="module")
def reranker() -> Reranker:
    return Reranker()


def test_the_shipped_calibration_loads_and_changes_the_probabilities(reranker: Reranker) -> None:
    model_dir = resolve_model("winnow-minilm-l6")
    shipped = model_dir / CALIBRATION_FILE
    record = json.loads(shipped.read_text())
    assert record["weights"] == model_fingerprint(model_dir)
    found = find_calibrator(model_dir)
    assert found is not None and found[1] == shipped and isinstance(found[0], PlattCalibrator)
    assert reranker.calibrator == found[0] == load_calibrator(shipped)
    ranking = reranker.rerank(
        IN_DOMAIN, ["TLS 1.3 completes a full handshake in one round trip.", "Bananas."]
    )
    for result in ranking:
        assert result.probability == pytest.approx(float(found[0].transform(np.array([result.score]))[0]))
    # The plain sigmoid is all but certain of the right passage; calibrated, it is a probability again.
    assert 1 / (1 + np.exp(-ranking[0].score)) > 0.99 and ranking[0].probability < 0.9
    # An explicit calibrator still wins, and a model without one keeps its sigmoid (effective threshold off).
    assert Reranker(calibrator=PlattCalibrator(1.0, 0.0)).calibrator == PlattCalibrator(1.0, 0.0)
    assert effective_min_confidence(None, reranker) == DEFAULT_MIN_CONFIDENCE
    assert effective_min_confidence(0, reranker) is None and effective_min_confidence(0.5, reranker) == 0.5


def test_a_users_own_calibration_wins_over_the_shipped_one(tmp_path: Path) -> None:
    from winnow.rerank.calibration import cache_calibration_path

    model_dir = resolve_model("winnow-minilm-l6")
    mine = PlattCalibrator(0.5, -2.0)
    save_calibrator(mine, cache_calibration_path(model_dir), model_dir)
    try:
        assert find_calibrator(model_dir)[0] == mine  # type: ignore[index]
    finally:
        cache_calibration_path(model_dir).unlink()


def test_uncalibrated_models_do_not_abstain_by_default(minilm_cross_encoder: Path) -> None:
    assert effective_min_confidence(None, Reranker(minilm_cross_encoder)) is None
    assert effective_min_confidence(None, None) is None


def search(index_dir: Path, query: str, *args: str):
    return runner.invoke(app, ["search", query, "--index", str(index_dir), "--candidates", "10", *args])


@pytest.mark.parametrize("query", [STOPWORDS, OUT_OF_DOMAIN])
def test_search_abstains_on_stopwords_and_out_of_domain_questions(index_dir: Path, query: str) -> None:
    result = search(index_dir, query)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("no passage"), result.stdout
    assert ABSTAINS in lines[0]
    as_json = search(index_dir, query, "--json")
    assert as_json.exit_code == 0 and as_json.stdout == "" and ABSTAINS in as_json.stderr
    shown = search(index_dir, query, "--min-confidence", "0", "--json")
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    assert shown.exit_code == 0 and len(rows) == 5
    assert all(row["probability"] < DEFAULT_MIN_CONFIDENCE for row in rows)


def test_search_answers_an_in_domain_question(index_dir: Path) -> None:
    result = search(index_dir, IN_DOMAIN, "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.exit_code == 0 and rows, result.output
    assert rows[0]["doc_id"] == "tls-13-handshake.md" and rows[0]["probability"] >= DEFAULT_MIN_CONFIDENCE
    strict = search(index_dir, IN_DOMAIN, "--min-confidence", "1")
    assert strict.exit_code == 0 and "no passage is confident enough" in strict.stdout
    bad = search(index_dir, IN_DOMAIN, "--min-confidence", "1.5")
    assert bad.exit_code == 1 and "min_confidence must be in [0, 1]" in bad.stderr


def test_ask_abstains_out_of_domain_and_answers_in_domain(index_dir: Path) -> None:
    def ask(question: str, *args: str):
        return runner.invoke(app, ["ask", question, "--index", str(index_dir), "--candidates", "10", *args])

    refused = ask(OUT_OF_DOMAIN)
    assert refused.exit_code == 0, refused.output
    assert refused.stdout.strip().startswith("I don't know: no passage is confident enough")
    assert len(refused.stdout.strip().splitlines()) == 1 and "--min-confidence 0" in refused.stdout
    refused_json = json.loads(ask(STOPWORDS, "--json").stdout)
    assert refused_json["mode"] == "abstained" and refused_json["min_confidence"] == DEFAULT_MIN_CONFIDENCE
    forced = json.loads(ask(OUT_OF_DOMAIN, "--min-confidence", "0", "--json").stdout)
    assert forced["mode"] == "extractive" and forced["min_confidence"] is None and forced["sources"]
    answered = json.loads(ask(IN_DOMAIN, "--json").stdout)
    assert answered["mode"] == "extractive" and answered["best_score"] >= DEFAULT_MIN_CONFIDENCE


def test_the_python_api_abstains_with_the_same_threshold(index_dir: Path, reranker: Reranker) -> None:
    with Index.open(index_dir) as index:
        pipeline = Pipeline(index, reranker, min_confidence=DEFAULT_MIN_CONFIDENCE)
        refused = pipeline.search(OUT_OF_DOMAIN, candidates=10)
        answered = pipeline.search(IN_DOMAIN, candidates=10)
        answer = answer_question(pipeline, OUT_OF_DOMAIN, candidates=10)
    assert not refused.confident and refused.results == [] and refused.abstention is not None
    assert refused.abstention.best_probability < DEFAULT_MIN_CONFIDENCE
    assert answered.confident and answered[0].probability >= DEFAULT_MIN_CONFIDENCE
    assert answer.mode == "abstained" and answer.abstention == refused.abstention
