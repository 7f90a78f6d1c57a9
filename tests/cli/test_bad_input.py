"""Predictable mistakes a new user makes with each `winnow` command: one line on stderr, a non-zero exit
code, never a traceback. Every case fails before a model is loaded, so the table runs in seconds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from winnow.cli import app
from winnow.cli.app import COMMANDS

runner = CliRunner()

NOT_UTF8 = "caf\xe9\n".encode("latin-1")

# (command line, files to create {name: content; None = folder}, exit code, fragment of the message).
# "{tmp}" in the command line is the test's folder. Exit code 2 is a usage error or a data error of
# train / eval / calibrate; 1 is a failed command.
CASES = [
    # rerank: the --docs file is checked line by line before the model loads
    (["rerank", "q", "--docs", "{tmp}/d.jsonl"], {"d.jsonl": '{"title": "no text"}\n'}, 1, "d.jsonl:1:"),
    (["rerank", "q", "--docs", "{tmp}/d.jsonl"], {"d.jsonl": '{"text": "ok"}\n[1, 2]\n'}, 1, "d.jsonl:2:"),
    (["rerank", "q", "--docs", "{tmp}/d.jsonl"], {"d.jsonl": '"ok"\n\n42\n'}, 1, "d.jsonl:3:"),
    (
        ["rerank", "q", "--docs", "{tmp}/d.jsonl"],
        {"d.jsonl": '{"text": "a"}\n{bad\n'},
        1,
        "d.jsonl:2: not valid JSON",
    ),
    (["rerank", "q", "--docs", "{tmp}/d.jsonl"], {"d.jsonl": ""}, 1, "no documents in"),
    (["rerank", "q", "--docs", "{tmp}/d.txt"], {"d.txt": "\n   \n"}, 1, "no documents in"),
    (["rerank", "q", "--docs", "{tmp}/d.txt"], {"d.txt": NOT_UTF8}, 1, "not UTF-8"),
    (["rerank", "q", "--docs", "{tmp}/folder"], {"folder": None}, 1, "is a folder"),
    (["rerank", "q", "--docs", "{tmp}/missing.jsonl"], {}, 1, "no such file"),
    (["rerank", "  ", "--docs", "{tmp}/d.txt"], {"d.txt": "a\n"}, 1, "query is empty"),
    (["rerank", "q", "--docs", "{tmp}/d.txt", "--top-k", "-1"], {"d.txt": "a\n"}, 2, "--top-k"),
    (["rerank", "q", "--docs", "{tmp}/d.txt", "--model", "nope-model"], {"d.txt": "a\n"}, 1, "unknown model"),
    (["rerank", "q", "--docs", "{tmp}/d.txt", "--backend", "xyz"], {"d.txt": "a\n"}, 1, "backend must be"),
    # index / search / stats / delete / ask on missing, damaged and empty indexes
    (["index", "{tmp}/missing", "--index", "{tmp}/i"], {}, 1, "does not exist"),
    (["index", "{tmp}/folder", "--index", "{tmp}/i"], {"folder": None}, 1, "nothing to index"),
    (["index", "{tmp}/e.txt", "--index", "{tmp}/i"], {"e.txt": ""}, 1, "nothing to index"),
    (["index", "{tmp}/a.txt", "--index", "{tmp}/i", "--model", "nope"], {"a.txt": "a"}, 1, "unknown model"),
    (["index", "{tmp}/a.txt", "--index", "{tmp}/i", "--authority", "x"], {"a.txt": "a"}, 1, "PATTERN=WEIGHT"),
    (["search", "q", "--index", "{tmp}/missing"], {}, 1, "no Winnow index"),
    (["search", "q", "--index", "{tmp}/a.txt"], {"a.txt": "a"}, 1, "no Winnow index"),
    (["search", "q", "--index", "{tmp}/i"], {"i/index.sqlite": b"garbage"}, 1, "is damaged"),
    (["search", "q", "--index", "{tmp}/empty-index"], {}, 1, "is empty"),
    (["search", "", "--index", "{tmp}/empty-index"], {}, 1, "query is empty"),
    (["search", "q", "--top-k", "-3"], {}, 2, "--top-k"),
    (["stats", "--index", "{tmp}/missing"], {}, 1, "no Winnow index"),
    (["stats", "--index", "{tmp}/i"], {"i/index.sqlite": b"garbage"}, 1, "is damaged"),
    (["delete", "x", "--index", "{tmp}/missing"], {}, 1, "no Winnow index"),
    (["delete", "x", "--index", "{tmp}/empty-index"], {}, 1, "none of x"),
    (["ask", "q", "--index", "{tmp}/missing"], {}, 1, "no Winnow index"),
    (["ask", "q", "--index", "{tmp}/empty-index"], {}, 1, "is empty"),
    (["ask", " ", "--index", "{tmp}/empty-index"], {}, 1, "question is empty"),
    # train: recipes and data files
    (["train", "{tmp}/r.yaml"], {"r.yaml": "base: [\n"}, 2, "not valid YAML"),
    (["train", "{tmp}/missing.yaml"], {}, 2, "no such recipe file"),
    (["train", "{tmp}/folder"], {"folder": None}, 2, "is a folder"),
    (["train", "--data", "{tmp}/t.jsonl", "-o", "{tmp}/run"], {"t.jsonl": '{"x": 1}\n'}, 2, "t.jsonl:1"),
    (["train", "--data", "{tmp}/t.jsonl", "-o", "{tmp}/run"], {"t.jsonl": "[1]\n"}, 2, "t.jsonl:1"),
    # eval and calibrate: data sets
    (["eval", "{tmp}/missing.jsonl"], {}, 2, "not found"),
    (["eval", "{tmp}/folder"], {"folder": None}, 2, "missing file"),
    (["eval", "{tmp}/q.jsonl", "--corpus", "{tmp}/q.jsonl"], {"q.jsonl": ""}, 2, "q.jsonl"),
    (["eval", "scifact", "--depths", "-1"], {}, 2, "--depths"),
    (["calibrate", "{tmp}/missing.jsonl"], {}, 2, "not found"),
    (["calibrate", "scifact", "--method", "foo"], {}, 2, "platt or isotonic"),
]


@pytest.fixture(scope="module")
def empty_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real index with no documents (creating one embeds nothing)."""
    from winnow.retrieve import Index

    folder = tmp_path_factory.mktemp("empty") / "empty-index"
    Index.create(folder).close()
    return folder


def _make(tmp: Path, files: dict[str, str | bytes | None]) -> None:
    for name, content in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if content is None:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


@pytest.mark.parametrize(
    ("args", "files", "exit_code", "fragment"), CASES, ids=[" ".join(case[0]) for case in CASES]
)
def test_bad_input_gives_one_line_and_an_exit_code(
    args: list[str],
    files: dict[str, str | bytes | None],
    exit_code: int,
    fragment: str,
    tmp_path: Path,
    empty_index: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _make(tmp_path, files)
    (tmp_path / "empty-index").symlink_to(empty_index, target_is_directory=True)
    monkeypatch.chdir(tmp_path)  # the default --index .winnow-index does not exist here
    for name in ("WINNOW_LLM_BASE_URL", "WINNOW_LLM_MODEL", "WINNOW_LLM_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, [arg.replace("{tmp}", str(tmp_path)) for arg in args])
    assert result.exit_code == exit_code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    # one error line, the last (`index` lists the files it skipped above it)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and fragment in last, result.stderr
    assert result.stderr.count("error:") == 1, result.stderr


# Mistyped command lines: (command line, the whole one-line message). Parsing fails before any work starts.
USAGE_ERRORS = [
    (
        ["search", "q", "--topk", "3"],
        "error: no such option: --topk (did you mean --store or --top-k?); see `winnow search --help`",
    ),
    (["search"], "error: missing argument 'query'; see `winnow search --help`"),
    (
        ["search", "q", "--top-k", "abc"],
        "error: invalid value for '--top-k' / '-k': Input should be a valid integer, unable to parse string "
        "as an integer; see `winnow search --help`",
    ),
    (["rerank", "q"], "error: missing option '--docs' / '-d'; see `winnow rerank --help`"),
    (["stats", "extra"], "error: got unexpected extra argument(s) (extra); see `winnow stats --help`"),
    (
        ["demo", "--idx", "x"],
        "error: no such option: --idx (did you mean --index?); see `winnow demo --help`",
    ),
    (["serch", "q"], "error: no such command 'serch' (did you mean 'search', 'serve'?); see `winnow --help`"),
    (["--bogus"], "error: no such option: --bogus; see `winnow --help`"),
    (["search", "q", "--mode"], "error: option '--mode' requires an argument"),
    (
        ["calibrate", "scifact", "--method", "foo"],
        "error: invalid value for --method: must be platt or isotonic, not 'foo'; "
        "see `winnow calibrate --help`",
    ),
]


@pytest.mark.parametrize(("args", "line"), USAGE_ERRORS, ids=[" ".join(case[0]) for case in USAGE_ERRORS])
def test_a_usage_error_is_one_line_with_exit_code_2(args: list[str], line: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    assert result.stderr.splitlines() == [line]


def test_every_command_answers_an_unknown_option_in_one_line() -> None:
    assert len(COMMANDS) >= 12 and "search" in COMMANDS and "serve" in COMMANDS
    for name in COMMANDS:
        result = runner.invoke(app, [name, "--no-such-option"])
        assert result.exit_code == 2, (name, result.output)
        expected = f"error: no such option: --no-such-option; see `winnow {name} --help`"
        assert result.stderr.splitlines() == [expected], (name, result.stderr)


def test_a_usage_error_in_a_real_narrow_terminal_stays_one_line() -> None:
    """Typer's panel was drawn to the terminal's width; the one line must not wrap even at 40 columns."""
    done = subprocess.run(
        [sys.executable, "-m", "winnow", "search", "q", "--topk", "3"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "40", "TERM": "xterm-256color"},
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stdout == "" and "Traceback" not in done.stderr
    expected = (
        "error: no such option: --topk (did you mean --store or --top-k?); "
        "see `python -m winnow search --help`"
    )
    assert done.stderr.splitlines() == [expected]


def test_ctrl_c_says_interrupted_and_exits_130(tmp_path: Path) -> None:
    """A real SIGINT while `winnow rerank --docs -` waits for standard input."""
    process = subprocess.Popen(
        [sys.executable, "-m", "winnow", "rerank", "q", "--docs", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored SIGINT ignored:
        # give the command the disposition a terminal's Ctrl-C meets, however pytest itself was started.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    time.sleep(3)  # start-up: the command is then blocked reading stdin
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert stderr.decode().strip() == "interrupted"
    assert stdout == b""


def test_a_keyboard_interrupt_inside_any_command_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(source: str) -> list[str]:
        raise KeyboardInterrupt

    monkeypatch.setattr("winnow.cli.rerank_command.read_documents", interrupted)
    result = runner.invoke(app, ["rerank", "q", "--docs", "-"])
    assert result.exit_code == 130
    assert result.stderr.strip() == "interrupted"


# What `winnow --help` and `winnow stats` must not load: the model stack, numpy, the search structures,
# what only searching needs, and the other commands' modules (a command loads only when it runs or
# --help lists it). Loading any of them cost a tenth of a second or more each (docs/benchmarks.md).
def test_counting_a_long_query_does_not_print_transformers_length_warning(
    capfd: pytest.CaptureFixture[str],
) -> None:
    from winnow.models import DEFAULT_RERANKER, resolve_model
    from winnow.models.tokenizer import Tokenizer
    from winnow.rerank.encoding import encode_pairs

    tokenizer = Tokenizer.from_model(resolve_model(DEFAULT_RERANKER))
    with pytest.raises(ValueError, match="tokens long"):
        encode_pairs(tokenizer, [" ".join(["tide"] * 700)], ["a passage"], max_length=512)
    assert "Token indices sequence length" not in capfd.readouterr().err
