"""Calibration: fitters recover known curves, calibration lowers ECE on held-back real data, and the
Reranker and `winnow calibrate` save, find and use a calibration."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from winnow.cli import app
from winnow.evaluation.calibration_data import LabelledScores
from winnow.evaluation.datasets import load_dataset
from winnow.models import resolve_model
from winnow.rerank import Reranker
from winnow.rerank.calibration import (
    CALIBRATION_FILE,
    IsotonicCalibrator,
    PlattCalibrator,
    SigmoidCalibrator,
    calibration_target,
    expected_calibration_error,
    find_calibrator,
    fit_calibrator,
    fit_isotonic,
    fit_platt,
    load_calibrator,
    reliability_diagram,
    save_calibrator,
)
from winnow.retrieve.bm25 import BM25Index


def test_platt_recovers_a_known_logistic_curve() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, 20_000)
    y = (rng.random(len(x)) < 1 / (1 + np.exp(-(0.7 * x - 1.0)))).astype(float)
    platt = fit_platt(x, y)
    assert platt.a == pytest.approx(0.7, abs=0.03) and platt.b == pytest.approx(-1.0, abs=0.05)
    # perfectly separated data still gives a finite, steep curve
    steep = fit_platt([-2, -1, 1, 2], [0, 0, 1, 1])
    assert np.isfinite([steep.a, steep.b]).all() and steep.transform(np.array([2.0]))[0] > 0.7


def test_isotonic_is_monotone_and_matches_the_pooled_means() -> None:
    iso = fit_isotonic([1, 2, 3, 4, 5, 6], [0, 1, 0, 0, 1, 1])
    # PAV pools (2, 3, 4) into 1/3: knots at both ends of the pooled block
    assert iso.transform(np.array([1, 2, 3, 4, 5, 6])).tolist() == pytest.approx(
        [0, 1 / 3, 1 / 3, 1 / 3, 1, 1]
    )
    assert iso.transform(np.array([-10.0, 100.0])).tolist() == [0.0, 1.0]  # flat outside the data
    tied = fit_isotonic([1, 1, 2, 2], [0, 1, 1, 1])
    assert tied.transform(np.array([1.0, 2.0])).tolist() == [0.5, 1.0]


def test_ece_and_bad_data() -> None:
    assert expected_calibration_error([0.9, 0.9, 0.1, 0.1], [1, 1, 0, 0]) == pytest.approx(0.1)
    assert expected_calibration_error([0.75, 0.75, 0.75, 0.75], [1, 1, 1, 0]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="both relevant and non-relevant"):
        fit_platt([1, 2], [1, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        fit_isotonic([1, 2], [0, 2])
    with pytest.raises(ValueError, match="3 logits but 2 labels"):
        fit_platt([1, 2, 3], [0, 1])
    with pytest.raises(ValueError, match="must be one of"):
        fit_calibrator("beta", [0, 1], [0, 1])


@pytest.fixture(scope="module")
def scifact_bm25(shared_data: Path) -> tuple[LabelledScores, LabelledScores]:
    """SciFact train and test queries with their BM25 top-10 scores as 'logits', labelled by the qrels.

    BM25 scores (5 to 40) are as far from probabilities as scores get, which is the point: a sigmoid of
    them claims ~1.0 for everything. The corpus is the judged documents plus every 3rd other one, to
    keep the test fast; the labels are real.
    """
    folder = shared_data / "beir" / "scifact"
    train, test = load_dataset(folder, split="train"), load_dataset(folder, split="test")
    judged = {d for qrels in (train.qrels, test.qrels) for docs in qrels.values() for d in docs}
    ids = [d for n, d in enumerate(train.corpus) if d in judged or n % 3 == 0]
    index = BM25Index.build([train.corpus[d] for d in ids])

    def labelled(evalset) -> LabelledScores:
        out = LabelledScores()
        for query_id, query in evalset.queries.items():
            positions, scores = index.search(query, 10)
            judged_here = evalset.qrels[query_id]
            out.add(query_id, scores, np.array([judged_here.get(ids[p], 0) >= 1 for p in positions], float))
        return out

    return labelled(train), labelled(test)


def test_calibration_lowers_ece_on_held_back_real_data(scifact_bm25, tmp_path: Path) -> None:
    train, test = scifact_bm25
    x, y = train.flat()
    test_x, test_y = test.flat()
    before = expected_calibration_error(SigmoidCalibrator().transform(test_x), test_y)
    platt = expected_calibration_error(fit_platt(x, y).transform(test_x), test_y)
    isotonic = expected_calibration_error(fit_isotonic(x, y).transform(test_x), test_y)
    # measured: sigmoid 0.899, Platt 0.023, isotonic 0.011
    assert before > 0.8 and platt < 0.05 and isotonic < 0.05
    png = reliability_diagram(
        {"sigmoid": (SigmoidCalibrator().transform(test_x), test_y)}, tmp_path / "r.png"
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_save_load_and_where_calibrations_live(
    minilm_cross_encoder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "cache"))
    for calibrator in (
        PlattCalibrator(0.5, -1.0),
        IsotonicCalibrator((0.0, 1.0), (0.1, 0.9)),
        SigmoidCalibrator(),
    ):
        path = save_calibrator(calibrator, tmp_path / "c.json", minilm_cross_encoder, note="x")
        assert load_calibrator(path) == calibrator
    # A user's model folder gets it beside the model; a bundled model never does.
    assert calibration_target(minilm_cross_encoder) == minilm_cross_encoder / CALIBRATION_FILE
    bundled = resolve_model("winnow-minilm-l6")
    target = calibration_target(bundled)
    assert target.is_relative_to(tmp_path / "cache" / "calibration") and not target.is_relative_to(bundled)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        load_calibrator(bad)
    bad.write_text(json.dumps({"kind": "platt", "a": 1.0}))
    with pytest.raises(ValueError, match=r"bad\.json: malformed platt"):
        load_calibrator(bad)


def test_reranker_uses_a_saved_calibration_and_ignores_a_stale_one(
    minilm_cross_encoder: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for item in minilm_cross_encoder.iterdir():
        (model / item.name).symlink_to(item)
    documents = ["TLS 1.3 needs one round trip.", "Bananas are yellow.", "HTTP/3 runs over QUIC."]
    plain = Reranker(model).rerank("tls handshake", documents)
    assert Reranker(model).calibrator is None
    platt = PlattCalibrator(0.25, -0.5)
    save_calibrator(platt, model / CALIBRATION_FILE, model)
    calibrated = Reranker(model)
    assert calibrated.calibrator == platt
    ranking = calibrated.rerank("tls handshake", documents)
    assert [r.index for r in ranking] == [r.index for r in plain]
    for result in ranking:
        assert result.probability == pytest.approx(1 / (1 + np.exp(-(0.25 * result.score - 0.5))))
    explicit = Reranker(model, calibrator=SigmoidCalibrator()).rerank("tls handshake", documents)
    assert [r.probability for r in explicit] == pytest.approx([r.probability for r in plain])

    record = json.loads((model / CALIBRATION_FILE).read_text())
    (model / CALIBRATION_FILE).write_text(json.dumps({**record, "weights": "0123456789abcdef"}))
    with caplog.at_level(logging.WARNING, logger="winnow.rerank"):
        assert find_calibrator(model) is None
    assert "fitted for other weights" in caplog.text


def test_calibrate_command_on_a_pairs_file(minilm_cross_encoder: Path, tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    for item in minilm_cross_encoder.iterdir():
        (model / item.name).symlink_to(item)
    topics = {
        "how do vaccines train the immune system": "Vaccines expose the immune system to an antigen.",
        "what causes ocean tides": "Tides are caused by the Moon's gravity pulling on the oceans.",
        "how does a refrigerator keep food cold": "A refrigerator pumps heat out with a compressor.",
        "why is the sky blue": "Rayleigh scattering makes short blue wavelengths dominate the sky.",
    }
    rows = []
    for query, passage in topics.items():
        rows.append({"query": query, "passage": passage, "label": 1})
        rows += [
            {"query": query, "passage": other, "label": 0} for other in topics.values() if other != passage
        ]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(row) for row in rows) + "\n")
    diagram = tmp_path / "reliability.png"
    result = CliRunner().invoke(
        app,
        [
            "calibrate",
            str(pairs),
            "--model",
            str(model),
            "--target-precision",
            "0.5",
            "--diagram",
            str(diagram),
            "--no-cache",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "before (sigmoid)" in result.output and "Proposed min_confidence" in result.output
    saved = json.loads((model / CALIBRATION_FILE).read_text())
    assert saved["kind"] == "platt" and saved["fitted_on"]["pairs"] == 16
    assert diagram.is_file() and isinstance(Reranker(model).calibrator, PlattCalibrator)

    pairs.write_text('{"query": "q", "passage": "p", "label": "yes"}\n')
    failed = CliRunner().invoke(app, ["calibrate", str(pairs), "--model", str(model), "--no-cache"])
    message = " ".join(failed.output.split())
    assert failed.exit_code == 2 and "pairs.jsonl:1: field 'label' must be 0/1" in message
