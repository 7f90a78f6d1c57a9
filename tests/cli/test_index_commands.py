"""`winnow index / search / stats / delete / demo` through Typer's CliRunner, errors included."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from winnow.cli import app

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "winnow" / "data" / "sample_corpus"
NETWORKING = str(SAMPLE / "networking")
runner = CliRunner()


def invoke(*args: str | Path) -> tuple[int, str]:
    """Run a command; returns (exit code, output with Rich's line wrapping undone)."""
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "index"
    code, out = invoke("index", NETWORKING, "--index", folder, "--chunk-tokens", "0")
    assert code == 0, out
    assert "13 added" in out and "13 chunks embedded" in out
    return folder


def test_index_again_reports_unchanged_and_skips_bad_files(index_dir: Path, tmp_path: Path) -> None:
    code, out = invoke("index", NETWORKING, "--index", index_dir)
    assert code == 0 and "13 unchanged" in out
    (tmp_path / "good.md").write_text("# Note\n\nUDP has no handshake.\n")
    (tmp_path / "bad.txt").write_bytes(b"\x00\x00binary")
    code, out = invoke("index", tmp_path, "--index", tmp_path / "i2")
    assert code == 0, out
    assert "1 added" in out and "bad.txt: binary file" in out


def test_search_json_and_filters(index_dir: Path) -> None:
    args = ["search", "TCP three-way handshake SYN", "--index", index_dir, "--no-rerank", "--json", "-k", "3"]
    result = runner.invoke(app, [str(a) for a in [*args, "--mode", "bm25"]])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert [r["rank"] for r in rows] == [1, 2, 3] and rows[0]["doc_id"] == "tcp-handshake.md"
    assert rows[0]["score"] is None and rows[0]["stage1_score"] > 0
    result = runner.invoke(app, [str(a) for a in [*args, "--filter", "updated_after=2024-06-01"]])
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows and all(r["updated_at"] >= "2024-06-01" for r in rows)


def test_search_table_shows_stage1_to_final_rank(index_dir: Path, minilm_cross_encoder: Path) -> None:
    code, out = invoke("search", "QUIC streams", "--index", index_dir, "--model", minilm_cross_encoder)
    assert code == 0, out
    assert "stage 1 → final" in out and "→ 1" in out


def test_stats_and_delete(index_dir: Path, tmp_path: Path) -> None:
    code, out = invoke("stats", "--index", index_dir)
    assert code == 0 and "documents │ 13" in out and "all-minilm-l6" in out and "whole documents" in out
    copy = tmp_path / "copy"
    invoke("index", NETWORKING, "--index", copy, "--chunk-tokens", "0")
    code, out = invoke("delete", "bgp-basics.md", "--index", copy)
    assert code == 0 and "deleted 1 of 1" in out
    code, out = invoke("delete", "bgp-basics.md", "--index", copy)
    assert code == 1 and "none of bgp-basics.md" in out


def test_bad_input_gives_clear_errors(tmp_path: Path, index_dir: Path) -> None:
    code, out = invoke("search", "anything", "--index", tmp_path / "missing")
    assert code == 1 and "winnow index PATH --index" in out
    code, out = invoke("index", tmp_path / "nope", "--index", tmp_path / "i")
    assert code == 1 and "does not exist" in out
    (tmp_path / "empty").mkdir()
    code, out = invoke("index", tmp_path / "empty", "--index", tmp_path / "i")
    assert code == 1 and "nothing to index" in out
    assert not (tmp_path / "i").exists()
    code, out = invoke("search", "   ", "--index", index_dir)
    assert code == 1 and "query is empty" in out


def test_every_command_has_help_with_an_example() -> None:
    for command in ("index", "search", "stats", "delete", "demo"):
        code, out = invoke(command, "--help")
        assert code == 0 and "Example" in out, command


def test_demo_runs_offline_on_the_bundled_corpus(minilm_cross_encoder: Path) -> None:
    code, out = invoke("demo", "--model", minilm_cross_encoder)
    assert code == 0, out
    assert "indexed the sample corpus (50 documents)" in out
    assert out.count("┃ final ┃ stage 1 ┃") == 3  # one stage-1 vs final table per demo query
