"""What a command loads in a fresh process: only what it needs, so it starts quickly.

`winnow --help` and `winnow stats` load no model stack at all. `winnow search` on a CPU without bf16 units
and without a GPU loads neither torch nor transformers: stage 1's query encoder runs in ONNX Runtime and
the default reranker in OpenVINO, both fed by ``winnow.models.tokenizer`` (docs/benchmarks.md, CLI
start-up). Where bf16 units or a GPU make ``auto`` pick torch, torch is needed and that check is skipped.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from winnow.models.hardware import cpu_has_fast_bf16, pick_device

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "winnow" / "data" / "sample_corpus"
NOT_AT_START_UP = {
    "torch",
    "transformers",
    "bm25s",
    "onnxruntime",
    "openvino",
    "numpy",
    "tqdm",
    "asyncio",
    "winnow.pipeline",
    "winnow.retrieve.dense",
}


def run_fresh(args: list[str]) -> tuple[str, set[str]]:
    """Run `winnow ARGS` in a new Python process: its standard output and the modules it loaded."""
    code = (
        "import json, sys\n"
        "from winnow.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as done:\n"
        "    assert not done.code, done.code\n"
        "print(json.dumps(sorted(sys.modules)), file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stderr.splitlines()[-1]))
    assert "winnow.cli.app" in loaded  # the check looks at the process that ran the command
    return done.stdout, loaded


@pytest.fixture(scope="module")
def empty_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real index with no documents (creating one embeds nothing)."""
    from winnow.retrieve import Index

    folder = tmp_path_factory.mktemp("empty") / "empty-index"
    Index.create(folder).close()
    return folder


@pytest.mark.parametrize(
    ("args", "shows", "not_loaded"),
    [
        (["--help"], "serve", NOT_AT_START_UP | {"pydantic", "winnow.retrieve.index"}),
        (
            ["stats", "--index", "{index}"],
            "embedding model",
            NOT_AT_START_UP | {"typer.rich_utils", "winnow.cli.search_command", "winnow.cli.serve_command"},
        ),
    ],
    ids=["--help", "stats"],
)
def test_help_and_stats_load_only_what_they_need(
    args: list[str], shows: str, not_loaded: set[str], empty_index: Path
) -> None:
    stdout, loaded = run_fresh([a.replace("{index}", str(empty_index)) for a in args])
    assert shows in stdout, stdout
    assert sorted(loaded & not_loaded) == []


@pytest.mark.skipif(
    cpu_has_fast_bf16() or pick_device() != "cpu", reason="auto runs the reranker in torch on this machine"
)
@pytest.mark.parametrize("rerank", [True, False], ids=["rerank", "no-rerank"])
def test_search_loads_no_torch_and_no_transformers(
    tmp_path_factory: pytest.TempPathFactory, rerank: bool
) -> None:
    from winnow.retrieve import Index
    from winnow.retrieve.ingest import iter_documents

    folder = tmp_path_factory.mktemp("startup") / "index"
    with Index.create(folder) as index:
        index.add(iter_documents([SAMPLE]), progress=False)
    query = "how does WAL mode let readers and writers run together?"
    args = ["search", query, "--index", str(folder), "--json", *([] if rerank else ["--no-rerank"])]
    # The first search of a model converts its tokenizer and exports its ONNX files (with torch); the
    # second is what every later search does.
    run_fresh(args)
    stdout, loaded = run_fresh(args)
    results = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    assert results and all(result["text"] for result in results), stdout
    assert "winnow.retrieve.dense" in loaded and ("winnow.rerank.reranker" in loaded) == rerank
    assert sorted(name for name in loaded if name.split(".")[0] in ("torch", "transformers")) == []
