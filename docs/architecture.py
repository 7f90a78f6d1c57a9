"""Draw docs/architecture.png: the stage layers (from tests/test_architecture.py) and the records' path.

The layers and the arrow count come from the same import walk the architecture test runs, so the
picture cannot drift from the code: `python docs/architecture.py` after a package is added or moved.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_architecture import LAYERS, import_graph, unit_of  # noqa: E402

ROLE = {
    "errors": "WinnowError and kin",
    "paths": "cache folders",
    "_lazy": "lazy imports",
    "records": "Document, Chunk, Candidate,\nas_candidate()",
    "jsonl": "JSON Lines I/O",
    "extras": "missing-extra errors",
    "models": "load, hardware, batching,\nfingerprint, ONNX export",
    "retrieve": "stage 1: index, BM25,\ndense, fusion, filters",
    "rerank": "stage 2: Reranker, Cascade,\ncalibration, backends, hosted",
    "stores": "external vector DBs as\ncandidate sources",
    "signals": "freshness, authority,\ndiversity, abstention",
    "pipeline": "Pipeline: stage 1 → 2 → signals",
    "answer": "context order, LLM,\nanswers with citations",
    "evaluation": "datasets, metrics,\nexperiments, reports",
    "training": "winnow train",
    "serve": "HTTP service (Cohere, TEI)",
    "integrations": "LangChain, LlamaIndex,\nHaystack",
    "scale": "Ray indexing and serving",
    "cli": "winnow <command>",
    "__main__": "python -m winnow",
}
FLOW = [
    ("files / your DB", "retrieve.ingest,\nstores"),
    ("Document", "retrieve.chunking"),
    ("Chunk", "retrieve.index.search"),
    ("Candidate", "rerank.Reranker.rerank"),
    ("Ranking (index, score,\nprobability)", "signals.combine"),
    ("PipelineResult", "answer.ask"),
    ("Answer + citations", ""),
]


def draw(path: Path) -> None:
    graph = import_graph()
    arrows = {(unit_of(a), unit_of(b)) for a, targets in graph.items() for b in targets}
    arrows = {(a, b) for a, b in arrows if a != b and "winnow" not in (a, b)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(15, 10), gridspec_kw={"width_ratios": [3, 1.35]})
    rows = len(LAYERS)
    for depth, units in enumerate(LAYERS):
        y = depth / rows
        left.axhspan(y, y + 0.9 / rows, color="#f2f2f2" if depth % 2 else "#e6eef7", zorder=0)
        left.text(-0.01, y + 0.45 / rows, str(depth), ha="right", va="center", fontsize=9, color="#777")
        width = 0.98 / len(units)
        for i, unit in enumerate(units):
            x = 0.01 + i * width
            left.add_patch(
                FancyBboxPatch(
                    (x, y + 0.08 / rows),
                    width - 0.02,
                    0.74 / rows,
                    boxstyle="round,pad=0.004",
                    fc="white",
                    ec="#336",
                    lw=1.2,
                )
            )
            name = f"{unit}/" if (ROOT / "src/winnow" / unit).is_dir() else f"{unit}.py"
            left.text(x + 0.012, y + 0.62 / rows, name, fontsize=10.5, weight="bold", va="center")
            left.text(x + 0.012, y + 0.3 / rows, ROLE.get(unit, ""), fontsize=8, va="center", color="#333")
    left.set_xlim(-0.03, 1)
    left.set_ylim(0, 1)
    left.axis("off")
    left.set_title(
        f"Stages, lowest first: a module imports only from bands below it\n"
        f"({len(arrows)} package-level import arrows, all pointing down: tests/test_architecture.py)",
        fontsize=11,
    )
    for i, (record, step) in enumerate(FLOW):
        y = 1 - (i + 0.5) / len(FLOW)
        right.add_patch(
            FancyBboxPatch((0.1, y - 0.04), 0.8, 0.08, boxstyle="round,pad=0.01", fc="#fff7e0", ec="#a60")
        )
        right.text(0.5, y, record, ha="center", va="center", fontsize=10, weight="bold")
        if step:
            right.add_patch(
                FancyArrowPatch(
                    (0.5, y - 0.05), (0.5, y - 1 / len(FLOW) + 0.05), arrowstyle="-|>", mutation_scale=14
                )
            )
            right.text(0.54, y - 0.5 / len(FLOW), step, fontsize=8, va="center", family="monospace")
    right.set_xlim(0, 1)
    right.set_ylim(0, 1)
    right.axis("off")
    right.set_title(
        "The records a query passes through\n(winnow/records.py, rerank/results.py, pipeline.py)", fontsize=11
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    draw(ROOT / "docs" / "architecture.png")
    print("wrote docs/architecture.png")
