"""Start-up time of the `winnow` command line: `--help`, `stats` and `search`, each in a fresh process.

What a user waits for before any work starts. Each command runs N times in a new Python process, through
the `winnow` console script as a user types it (plus `python -m winnow --help`); the table gives the
median wall time and the median CPU time (user + system, which a busy machine inflates less than wall
time). Python's bytecode cache is on, as in an installed package (it lives in .winnow-cache/pycache, so
the source tree stays clean, and one untimed run fills it). For `search`, the start-up overhead is the
wall time minus the stage-1 and rerank time of the same search in a warm process (the third search of one
`Pipeline`, without the reranker's score cache): everything a one-off command waits for that a running
service would not, loading the models included. With --baseline-src (a `src/` folder of another
checkout, e.g. `git archive HEAD | tar -x -C /tmp/base`) the same commands run on that code side by side.

Run: nice .venv/bin/python benchmarks/cli_startup.py --runs 5 --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import CACHE, REPO
from markdown_report import write_section

SAMPLE = REPO / "src" / "winnow" / "data" / "sample_corpus"
INDEX = CACHE / "cli-startup-index"
QUERY = "why do my reads and writes block each other in sqlite?"
CONSOLE_SCRIPT = Path(sys.executable).parent / "winnow"
WARM_SEARCH = """
import sys
from winnow import Index, Pipeline, Reranker
with Index.open(sys.argv[1]) as index:
    # No score cache: the repeated search must rerank again, as the one-off command does.
    pipeline = Pipeline(index, Reranker(cache=0) if sys.argv[3] == "rerank" else None)
    for _ in range(3):
        timings = pipeline.search(sys.argv[2], candidates=50, top_k=5).timings
print((timings["stage1_ms"] + timings["rerank_ms"]) / 1000)
"""


def _env(src: Path | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env.update(COLUMNS="200", PYTHONPYCACHEPREFIX=str(CACHE / "pycache"))
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return env


def _run(command: list[str], src: Path | None) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``command`` in a fresh process on the code in ``src``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_env(src), check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _warm_work(src: Path | None, rerank: bool) -> float:
    """Seconds of stage 1 + rerank of the benchmark's search in a warm process."""
    command = [sys.executable, "-c", WARM_SEARCH, str(INDEX), QUERY, "rerank" if rerank else "no-rerank"]
    done = subprocess.run(command, capture_output=True, text=True, env=_env(src), check=True)
    return float(done.stdout.split()[-1])


def measure(srcs: list[Path | None], runs: int) -> list[dict[str, tuple[float, float, float | None]]]:
    """Per code folder in ``srcs`` and command: (median wall, median CPU, start-up overhead of search or
    None). The folders take turns run by run, so a change in the machine's load hits them alike."""
    winnow = str(CONSOLE_SCRIPT)
    commands = {
        "winnow --help": ([winnow, "--help"], False),
        "python -m winnow --help": ([sys.executable, "-m", "winnow", "--help"], False),
        "winnow stats": ([winnow, "stats", "--index", str(INDEX)], False),
        "winnow search --no-rerank": ([winnow, "search", QUERY, "--index", str(INDEX), "--no-rerank"], True),
        "winnow search": ([winnow, "search", QUERY, "--index", str(INDEX)], True),
    }
    results: list[dict[str, tuple[float, float, float | None]]] = [{} for _ in srcs]
    for name, (command, is_search) in commands.items():
        for src in srcs:
            _run(command, src)  # untimed: fills the bytecode cache and the OS file cache
        timed = [[_run(command, src) for src in srcs] for _ in range(runs)]
        for i, src in enumerate(srcs):
            wall = statistics.median(run[i][0] for run in timed)
            work = _warm_work(src, rerank="--no-rerank" not in command) if is_search else None
            overhead = None if work is None else wall - work
            results[i][name] = (wall, statistics.median(run[i][1] for run in timed), overhead)
            print(src or "current", name, results[i][name], flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, help="src/ folder of the code to compare with")
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/benchmarks.md")
    args = parser.parse_args()

    if not (INDEX / "index.sqlite").is_file():
        subprocess.run(
            [sys.executable, "-m", "winnow", "index", str(SAMPLE), "--index", str(INDEX)], check=True
        )
    current, *others = measure([None, args.baseline_src] if args.baseline_src else [None], args.runs)
    baseline = others[0] if others else None

    from winnow.models.hardware import cpu_has_fast_bf16, cpu_name

    cpu = f"{cpu_name()}, {'with' if cpu_has_fast_bf16() else 'without'} bf16 units"
    load = os.getloadavg()[0]

    def cell(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f} s"

    header = "| command | wall | CPU | start-up overhead |"
    rule = "|---|---:|---:|---:|"
    if baseline:
        header = "| command | wall before → now | CPU before → now | start-up overhead before → now |"
    rows = []
    for name, (wall, cpu_s, overhead) in current.items():
        if baseline:
            b_wall, b_cpu, b_overhead = baseline[name]
            rows.append(
                f"| `{name}` | {cell(b_wall)} → {cell(wall)} | {cell(b_cpu)} → {cell(cpu_s)} "
                f"| {cell(b_overhead)} → {cell(overhead)} |"
            )
        else:
            rows.append(f"| `{name}` | {cell(wall)} | {cell(cpu_s)} | {cell(overhead)} |")
    markdown = "\n".join(
        [
            "### CLI start-up",
            "",
            f"Median of {args.runs} fresh processes per command on {cpu}, {os.cpu_count()} cores "
            f"(load average at the end {load:.1f}); CPU = user + system time of the process; bytecode "
            "cache on, as in an installed package. `search` runs on the 50-document sample corpus with "
            "the default reranker (backend auto); its start-up overhead is wall time minus the stage-1 "
            "and rerank time of the same search in a warm process (score cache off), so it includes loading "
            "the models. "
            f"`nice .venv/bin/python benchmarks/cli_startup.py --runs {args.runs}"
            + (f" --baseline-src {args.baseline_src}`" if args.baseline_src else "`"),
            "",
            header,
            rule,
            *rows,
            "",
            "Where the load average is above the core count, wall time mostly measures waiting for a core: "
            "compare the CPU column." + (" Before = the code in --baseline-src." if baseline else ""),
            "",
            "What a one-off search waits for besides its work: on a CPU without bf16 units it loads neither "
            "torch nor transformers (tokens come from `winnow.models.tokenizer`, the query encoder runs in "
            "ONNX Runtime, the reranker in OpenVINO from its compiled-model cache); what is left is Python "
            "and the CLI (~0.4 s, `winnow --help`), bm25s with numba and scipy (~0.4 s), OpenVINO and ONNX "
            "Runtime themselves, and opening the models. Where `auto` picks torch (bf16 units, GPUs), "
            "torch and transformers load as before.",
        ]
    )
    print(markdown)
    if not args.no_report:
        write_section("cli-startup", markdown)


if __name__ == "__main__":
    main()
