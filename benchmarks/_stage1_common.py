"""Shared glue for the stage-1 benchmarks: data paths, BEIR qrels and queries, the results writer."""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
CACHE = REPO / ".winnow-cache"
BENCHMARKS_MD = REPO / "docs" / "benchmarks.md"


def load_queries(folder: Path, split: str = "test") -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """Queries of a BEIR split that have judgements, and the qrels (CRLF-tolerant)."""
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / f"{split}.tsv").open(encoding="utf-8", newline=None) as handle:
        next(handle)
        for line in handle:
            qid, did, score = line.rstrip("\r\n").split("\t")
            qrels.setdefault(qid, {})[did] = int(score)
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            record = json.loads(line)
            if record["_id"] in qrels:
                queries[record["_id"]] = record["text"]
    return queries, qrels


def write_section(name: str, body: str) -> None:
    """Replace (or append) the ``### name`` block of the "## Stage 1" section of docs/benchmarks.md.

    Other sections of the file belong to other engineers and are kept byte for byte.
    """
    text = BENCHMARKS_MD.read_text(encoding="utf-8") if BENCHMARKS_MD.exists() else "# Benchmarks\n"
    if "\n## Stage 1\n" not in text:
        text = text.rstrip("\n") + "\n\n## Stage 1\n"
    head, _, rest = text.partition("\n## Stage 1\n")
    after = re.search(r"^## ", rest, flags=re.M)
    cut = after.start() if after else len(rest)
    stage1, tail = rest[:cut], rest[cut:]
    block = f"### {name}\n\n{body.strip()}\n\n"
    pattern = re.compile(rf"^### {re.escape(name)}\n.*?(?=^### |\Z)", flags=re.M | re.S)
    if pattern.search(stage1):
        stage1 = pattern.sub(lambda _: block, stage1)
    else:
        stage1 = stage1.rstrip("\n") + "\n\n" + block
    BENCHMARKS_MD.parent.mkdir(exist_ok=True)
    BENCHMARKS_MD.write_text(f"{head}\n## Stage 1\n\n{stage1.strip()}\n\n{tail}".rstrip("\n") + "\n")
