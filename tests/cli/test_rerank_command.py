"""`winnow rerank` from the command line, with a real model."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from winnow.cli import app
from winnow.cli.app import COMMANDS

runner = CliRunner()
DOCS = [
    {"id": "a", "text": "Vaccines train memory cells of the immune system."},
    {"id": "b", "text": "The Eiffel Tower is in Paris."},
    {"id": "c", "text": "Antibodies recognise pathogens after vaccination."},
]


def test_rerank_jsonl_file_prints_json_lines(minilm_cross_encoder, tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps(d) for d in DOCS) + "\n", encoding="utf-8")
    result = runner.invoke(
        app,
        [
            "rerank",
            "how do vaccines work?",
            "--docs",
            str(path),
            "--json",
            "--model",
            str(minilm_cross_encoder),
            "--top-k",
            "2",
        ],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [row["rank"] for row in rows] == [1, 2]
    assert rows[0]["score"] >= rows[1]["score"]
    assert all(row["document"] == DOCS[row["index"]] for row in rows)


def test_rerank_reads_plain_lines_from_stdin_and_prints_a_table(minilm_cross_encoder):
    stdin = "\n".join(d["text"] for d in DOCS) + "\n"
    result = runner.invoke(
        app,
        ["rerank", "how do vaccines work?", "--docs", "-", "--model", str(minilm_cross_encoder)],
        input=stdin,
    )
    assert result.exit_code == 0, result.output
    assert "3 of 3 documents" in result.stdout
    assert "Eiffel" in result.stdout


def test_rerank_reports_missing_and_broken_files(minilm_cross_encoder, tmp_path):
    result = runner.invoke(app, ["rerank", "q", "--docs", str(tmp_path / "nope.jsonl")])
    assert result.exit_code != 0 and "no such file" in result.output
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"text": "ok"}\n{not json\n', encoding="utf-8")
    result = runner.invoke(app, ["rerank", "q", "--docs", str(broken), "--model", str(minilm_cross_encoder)])
    assert result.exit_code != 0 and "broken.jsonl:2" in result.output
    latin = tmp_path / "latin.txt"
    latin.write_bytes("caf\xe9\n".encode("latin-1"))
    result = runner.invoke(app, ["rerank", "q", "--docs", str(latin), "--model", str(minilm_cross_encoder)])
    assert result.exit_code != 0 and "not UTF-8" in result.output


def test_every_command_has_help_with_an_example():
    listed = runner.invoke(app, ["--help"])
    assert listed.exit_code == 0 and "Example" in listed.stdout
    assert "rerank" in COMMANDS
    for command in COMMANDS:
        assert command in listed.stdout, f"`winnow --help` does not list {command}"
        help_text = runner.invoke(app, [command, "--help"]).stdout
        assert "Example" in help_text, f"`winnow {command} --help` has no example"
