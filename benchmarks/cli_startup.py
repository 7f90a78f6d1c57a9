"""Start-up time of the `winnow` command line: `--help`, `stats` and `search`, each in a fresh process.

What a user waits for before any work starts. Each command runs N times in a new Python process; the
table gives the median wall time and the median CPU time (user + system, which a busy machine inflates
less than wall time). For `search` the work itself (stage 1 + rerank, as the command reports it) is
subtracted to give the start-up overhead. With --baseline-src (a `src/` folder of another checkout, e.g.
`git archive HEAD | tar -x -C /tmp/base`) the same commands run on that code side by side.

Run: nice .venv/bin/python benchmarks/cli_startup.py --runs 5 --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import os
import re
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
TIMINGS = re.compile(r"stage 1 (\d+) ms, rerank (\d+) ms")


def _run(args: list[str], src: Path | None) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds, stdout) of `winnow ARGS` in a fresh process on the code in ``src``."""
    env = {**os.environ, "COLUMNS": "200"}
    if src is not None:
        env["PYTHONPATH"] = str(src)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", "from winnow.cli import main; main()", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"winnow {' '.join(args)} failed:\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done.stdout


def measure(src: Path | None, runs: int) -> dict[str, tuple[float, float, float | None]]:
    """Per command: (median wall, median CPU, median start-up overhead of search or None)."""
    commands = {
        "winnow --help": ["--help"],
        "winnow stats": ["stats", "--index", str(INDEX)],
        "winnow search --no-rerank": ["search", QUERY, "--index", str(INDEX), "--no-rerank"],
        "winnow search": ["search", QUERY, "--index", str(INDEX)],
    }
    results = {}
    for name, args in commands.items():
        walls, cpus, overheads = [], [], []
        for _ in range(runs):
            wall, cpu, out = _run(args, src)
            walls.append(wall)
            cpus.append(cpu)
            if found := TIMINGS.search(out):
                overheads.append(wall - (int(found[1]) + int(found[2])) / 1000)
        overhead = statistics.median(overheads) if overheads else None
        results[name] = (statistics.median(walls), statistics.median(cpus), overhead)
        print(name, results[name], flush=True)
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
    _run(["stats", "--index", str(INDEX)], None)  # one warm-up: the first run also fills the OS file cache
    current = measure(None, args.runs)
    baseline = measure(args.baseline_src, args.runs) if args.baseline_src else None

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
            f"Median of {args.runs} fresh processes per command on {cpu}, 2 cores shared with other work "
            f"(load average at the end {load:.1f}); CPU = user + system time of the process. `search` runs "
            "on the 50-document sample corpus with the default reranker (backend auto); its start-up "
            "overhead is wall time minus the stage-1 and rerank time the command reports. "
            f"`nice .venv/bin/python benchmarks/cli_startup.py --runs {args.runs}"
            + (f" --baseline-src {args.baseline_src}`" if args.baseline_src else "`"),
            "",
            header,
            rule,
            *rows,
            "",
            "Where the load average is above the core count, wall time mostly measures waiting for a core: "
            "compare the CPU column." + (" Before = the code in --baseline-src." if baseline else ""),
        ]
    )
    print(markdown)
    if not args.no_report:
        write_section("cli-startup", markdown)


if __name__ == "__main__":
    main()
