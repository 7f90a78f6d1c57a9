"""Probe: when word overlap misleads. Does a reranker put the passage that answers first?

benchmarks/data/probe_overlap.jsonl holds 20 hand-written cases (issue 21) in which 1-3 distractor
passages share more of the query's words than the passage that answers it: negation (the opposite said
with the same words), who does what to whom, which component a setting belongs to, the type of answer
asked for (a date, a duration, a person, not a procedure), the wrong entity or scope, and the issue's
GPL-versus-MPL licence question. Each case is scored on its own passages only, by BM25
(``winnow.retrieve.bm25``, built over the case's passages), by the shipped default reranker and by any
``--model``; a case counts when the answering passage scores strictly highest.

It also measures whether query and passage interact: every pair is scored again with attention between
the query and the passage blocked (each token attends only within its own segment). For Winnow's gated
model that means every cross-attention gate at 0; for a plain BERT cross-encoder, a 4-D attention mask.
A model whose scores do not move reads the two texts apart, whatever its architecture says.

Run: nice .venv/bin/python benchmarks/probe_overlap.py [--model runs/winnow-ce-minilm-l6/best] [--no-write]
Takes about a minute on 2 CPU cores; the table goes into docs/training.md.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from markdown_report import DOCS, write_section

PROBE = Path(__file__).resolve().parent / "data" / "probe_overlap.jsonl"


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    query: str
    passages: tuple[str, ...]  # the answer first, then the distractors


def load_cases(path: Path = PROBE) -> list[Case]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        cases.append(Case(row["id"], row["kind"], row["query"], (row["answer"], *row["distractors"])))
    return cases


def answered_first(scores: np.ndarray) -> bool:
    """The answer (index 0) strictly above every distractor: a tie is not a win."""
    return bool(scores[0] > scores[1:].max())


def bm25_scores(case: Case) -> np.ndarray:
    from winnow.retrieve.bm25 import BM25Index

    return BM25Index.build(list(case.passages)).scores(case.query)


def reranker_scores(model: str | None, cases: list[Case]) -> list[np.ndarray]:
    from winnow.rerank import DEFAULT_RERANKER, Reranker

    reranker = Reranker(model or DEFAULT_RERANKER, cache=0)
    return [np.asarray(reranker.score([(c.query, p) for p in c.passages]), dtype=np.float64) for c in cases]


def pair_logits(model, tokenizer, case: Case, blocked: bool) -> np.ndarray:
    """fp32 logits of the case's pairs; ``blocked`` keeps each token's attention within its own segment."""
    import torch

    from winnow.models.gated_cross_encoder import GatedBertForSequenceClassification

    encoded = tokenizer(
        [case.query] * len(case.passages),
        list(case.passages),
        truncation="longest_first",
        max_length=512,
        padding=True,
        return_tensors="pt",
    )
    gated = isinstance(model, GatedBertForSequenceClassification)
    with torch.no_grad():
        if gated:
            gates = [layer.attention.self.cross_gate for layer in model.bert.encoder.layer]
            saved = [gate.detach().clone() for gate in gates]
            if blocked:
                for gate in gates:
                    gate.zero_()
            try:
                return model(**encoded).logits.float().view(-1).numpy()
            finally:
                for gate, value in zip(gates, saved, strict=True):
                    gate.copy_(value)
        if blocked:
            present = encoded["attention_mask"].bool()
            segment = encoded["token_type_ids"].bool()
            same = (segment[:, :, None] == segment[:, None, :]) & present[:, None, :]
            encoded["attention_mask"] = same[:, None]
        return model(**encoded).logits.float().view(-1).numpy()


def interaction(model_name: str | None, cases: list[Case]) -> dict[str, float]:
    """How much the scores depend on query-passage attention, measured on the probe's pairs."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import winnow.models.gated_cross_encoder  # noqa: F401  (registers the gated model with transformers)
    from winnow.models import resolve_model
    from winnow.rerank import DEFAULT_RERANKER

    path = resolve_model(model_name or DEFAULT_RERANKER)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, dtype=torch.float32).eval()
    normal = [pair_logits(model, tokenizer, c, blocked=False) for c in cases]
    blocked = [pair_logits(model, tokenizer, c, blocked=True) for c in cases]
    spread = np.mean([s.std() for s in normal])
    change = np.concatenate([np.abs(s - b) for s, b in zip(normal, blocked, strict=True)])
    return {
        "mean_abs_change": float(change.mean()),
        "relative_change": float(change.mean() / spread) if spread > 0 else float("nan"),
        "order_changed": sum(
            not np.array_equal(np.argsort(-s), np.argsort(-b)) for s, b in zip(normal, blocked, strict=True)
        ),
        "blocked_first": sum(answered_first(b) for b in blocked),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], help="another reranker to probe; repeatable")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/training.md alone")
    args = parser.parse_args()

    from winnow.models.hardware import cpu_bf16_units, cpu_name
    from winnow.rerank import DEFAULT_RERANKER

    cases = load_cases()
    started = time.perf_counter()
    rows: list[tuple[str, list[bool], dict[str, float] | None]] = [
        (
            "BM25 (`winnow.retrieve.bm25`, over each case's passages)",
            [answered_first(bm25_scores(c)) for c in cases],
            None,
        )
    ]
    for model in [None, *args.model]:
        scores = reranker_scores(model, cases)
        label = f"`{model or DEFAULT_RERANKER}`" + (" (shipped default)" if model is None else "")
        rows.append((label, [answered_first(s) for s in scores], interaction(model, cases)))
        print(f"{label}: {sum(rows[-1][1])}/{len(cases)}", flush=True)
    seconds = time.perf_counter() - started

    kinds = sorted({c.kind for c in cases}, key=[c.kind for c in cases].index)
    header = "| scorer | answer first | " + " | ".join(
        f"{k} ({sum(c.kind == k for c in cases)})" for k in kinds
    )
    header += " | \\|Δ score\\| blocked / spread | order changed | first, blocked |"
    lines = [header, "|" + "---|" * (len(kinds) + 5)]
    for label, wins, inter in rows:
        per_kind = " | ".join(
            str(sum(w for w, c in zip(wins, cases, strict=True) if c.kind == k)) for k in kinds
        )
        extra = (
            f"{inter['relative_change']:.3f} | {inter['order_changed']}/{len(cases)} | "
            f"{inter['blocked_first']}/{len(cases)}"
            if inter
            else "- | - | -"
        )
        lines.append(f"| {label} | **{sum(wins)}/{len(cases)}** | {per_kind} | {extra} |")
    won = {label: [c.id for w, c in zip(wins, cases, strict=True) if w] for label, wins, _ in rows}
    units = cpu_bf16_units()
    bf16 = f"bf16 units: {units}" if units else "no bf16 units"
    body = "\n".join(
        [
            "## Probe: when word overlap misleads",
            "",
            "`benchmarks/data/probe_overlap.jsonl`: 20 hand-written cases in which 1-3 distractors share",
            "more of the query's words than the passage that answers it (negation; who does what to whom;",
            "which component a setting belongs to; the type of answer asked for; the wrong entity or scope;",
            "the issue's GPL-vs-MPL licence question). A case counts when the answering passage scores",
            "strictly highest among its case's passages. Issue 21's bar: >= 16/20.",
            "",
            *lines,
            "",
            "Interaction columns: every pair scored again in fp32 at 512 tokens with attention between",
            "query and passage blocked (gated model: all cross-attention gates set to 0; plain BERT",
            "cross-encoder: a 4-D mask that keeps each token's attention within its own segment, so its",
            "[CLS] head reads the query alone). *|Δ score| / spread*: the mean absolute change of a pair's",
            "logit over the mean spread (std) of the logits within a case; 0 means query and passage never",
            "attend to each other. *order changed*: cases whose passage order differs. *first, blocked*:",
            "the probe score with attention blocked.",
            "",
            "Cases won: " + "; ".join(f"{label}: {', '.join(ids) or 'none'}" for label, ids in won.items()),
            "",
            f"{cpu_name()}, {bf16}; {seconds:.0f} s in all on a shared machine. "
            "Command: `nice .venv/bin/python benchmarks/probe_overlap.py"
            + "".join(f" --model {m}" for m in args.model)
            + "`.",
        ]
    )
    print(body)
    if not args.no_write:
        write_section("probe-overlap", body, DOCS / "training.md")


if __name__ == "__main__":
    main()
