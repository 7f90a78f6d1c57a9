"""`winnow ask` through Typer's CliRunner on a small index of the sample corpus."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from answer.test_llm import ChatServer, completion
from typer.testing import CliRunner

from winnow.answer import NO_LLM_NOTICE
from winnow.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "winnow" / "data" / "sample_corpus"
QUESTION = "how does TLS 1.3 reduce handshake round trips?"
runner = CliRunner()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "WINNOW_LLM_BASE_URL",
        "WINNOW_LLM_MODEL",
        "WINNOW_LLM_API_KEY",
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ask-cli") / "index"
    result = runner.invoke(
        app, ["index", str(SAMPLE / "networking"), "--index", str(folder), "--chunk-tokens", "0"]
    )
    assert result.exit_code == 0, result.output
    return folder


@pytest.fixture()
def server() -> Iterator[ChatServer]:
    chat = ChatServer()
    yield chat
    chat.close()


def ask(index_dir: Path, model: Path, *args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["ask", QUESTION, "--index", str(index_dir), "--model", str(model), *args])
    return result.exit_code, result.stdout, result.stderr


def test_without_a_model_the_answer_is_extractive_and_says_so(
    index_dir: Path, minilm_cross_encoder: Path
) -> None:
    code, out, _ = ask(index_dir, minilm_cross_encoder, "--top-k", "3")
    assert code == 0, out
    assert NO_LLM_NOTICE in " ".join(out.split())
    assert "Sources" in out and "[1]" in out and "[3]" in out and "extractive; 3 passages" in out


def test_json_output(index_dir: Path, minilm_cross_encoder: Path) -> None:
    code, out, _ = ask(index_dir, minilm_cross_encoder, "--json", "-k", "2", "--budget", "400")
    assert code == 0, out
    answer = json.loads(out)
    assert answer["mode"] == "extractive" and len(answer["sources"]) == 2 and answer["context_tokens"] <= 400
    assert answer["citations"] and all(1 <= n <= 2 for n in answer["citations"])
    assert all(s["doc_id"].endswith(".md") for s in answer["sources"])


def test_generated_answer_streams_to_the_terminal(
    index_dir: Path, minilm_cross_encoder: Path, server: ChatServer
) -> None:
    server.behaviours = [completion("One round| trip [1].")]
    code, out, _ = ask(index_dir, minilm_cross_encoder, "--llm-base-url", server.base_url, "--llm-model", "m")
    assert code == 0, out
    assert out.startswith("One round trip [1].\n") and "*[1]" in out and "generated;" in out
    assert server.requests[0]["body"]["stream"] is True
    code, out, _ = ask(
        index_dir, minilm_cross_encoder, "--llm-base-url", server.base_url, "--llm-model", "m", "--no-stream"
    )
    assert (
        code == 0 and out.startswith("One round trip [1].") and server.requests[1]["body"]["stream"] is False
    )


def test_endpoint_down_shows_the_error_and_the_passages(
    index_dir: Path, minilm_cross_encoder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("WINNOW_LLM_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("WINNOW_LLM_MODEL", "m")
    code, out, err = ask(index_dir, minilm_cross_encoder, "--retries", "1", "-k", "2")
    assert code == 1
    assert "failed after 2 attempts: cannot connect" in " ".join(err.split())
    assert "The language model failed" in out and "Sources" in out and "[2]" in out


def test_min_confidence_abstains(index_dir: Path, minilm_cross_encoder: Path) -> None:
    code, out, _ = ask(index_dir, minilm_cross_encoder, "--min-confidence", "1", "--json")
    answer = json.loads(out)
    assert code == 0 and answer["mode"] == "abstained" and answer["text"].startswith("I don't know")
    assert answer["citations"] == [] and 0 < answer["best_score"] < 1
    code, _, err = ask(index_dir, minilm_cross_encoder, "--min-confidence", "1.5")
    assert code == 1 and "min_confidence must be in [0, 1]" in err


def test_bad_input(index_dir: Path, minilm_cross_encoder: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["ask", "  ", "--index", str(index_dir)])
    assert result.exit_code == 1 and "question is empty" in result.stderr
    result = runner.invoke(app, ["ask", QUESTION, "--index", str(tmp_path / "missing")])
    assert result.exit_code == 1 and "winnow index PATH --index" in " ".join(result.stderr.split())
    result = runner.invoke(app, ["ask", QUESTION, "--index", str(index_dir), "--llm-base-url", "http://x/v1"])
    assert result.exit_code == 1 and "no chat model set" in " ".join(result.stderr.split())
    result = runner.invoke(app, ["ask", "--help"])
    assert result.exit_code == 0 and "Example:" in result.stdout
