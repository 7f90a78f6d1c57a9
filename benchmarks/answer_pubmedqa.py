"""Extractive answers on PubMedQA: is the question's own abstract the one cited?

The 1,000 labelled PubMedQA questions each come with the abstract they were written from (its
CONTEXTS). All abstracts together are the corpus (one document per question, contexts joined, id =
PubMed id); each question is then answered extractively (no language model) by ``winnow.answer.ask``, and
counted correct when a cited passage comes from the question's own abstract. Also reported: how often
the top sentence alone cites it, how often the abstract was among the passages at all (the ceiling),
and the median latency of one ``ask`` (stage 1 + rerank + context + sentence scoring).

Run: nice .venv/bin/python benchmarks/answer_pubmedqa.py [--model winnow-minilm-l6] [--limit 200]
The index is cached in .winnow-cache/pubmedqa-index; results go to docs/answer.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from markdown_report import DOCS, write_section
from tqdm import tqdm

REPO = Path(__file__).resolve().parents[1]
PUBMEDQA = REPO.parent / "shared" / "data" / "qa" / "pubmedqa" / "ori_pqal.json"
CACHE = REPO / ".winnow-cache" / "pubmedqa-index"


def load_pubmedqa(path: Path = PUBMEDQA) -> dict[str, dict]:
    """PubMed id -> {"question", "text"} (the contexts joined by blank lines)."""
    records = json.loads(path.read_text(encoding="utf-8"))
    out = {}
    for pmid, record in records.items():
        if not record.get("QUESTION") or not record.get("CONTEXTS"):
            raise ValueError(f"{path}: question {pmid} has no QUESTION or CONTEXTS")
        out[pmid] = {"question": record["QUESTION"], "text": "\n\n".join(record["CONTEXTS"])}
    return out


def open_index(records: dict[str, dict]):
    from winnow.records import Document
    from winnow.retrieve import Index

    index = Index.open_or_create(CACHE)
    stats = index.add((Document(id=pmid, text=r["text"], source="pubmedqa") for pmid, r in records.items()))
    print(f"index: {stats.added} added, {stats.unchanged} unchanged, {index.stats().chunks} chunks")
    return index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="reranker model (default: Winnow's default)")
    parser.add_argument("--limit", type=int, default=None, help="answer only the first N questions")
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--sentences", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/answer.md alone")
    args = parser.parse_args()

    from winnow.answer import ask
    from winnow.pipeline import Pipeline
    from winnow.rerank import DEFAULT_RERANKER, Reranker

    records = load_pubmedqa()
    model = args.model or DEFAULT_RERANKER
    reranker = Reranker(model)
    questions = list(records.items())[: args.limit]
    cited = top_cited = retrieved = 0
    latencies, context_ms, retrieval_ms = [], [], []
    with open_index(records) as index:
        pipeline = Pipeline(index, reranker)
        for pmid, record in tqdm(questions, desc="questions", unit="q"):
            start = time.perf_counter()
            answer = ask(
                pipeline,
                record["question"],
                candidates=args.candidates,
                top_k=args.top_k,
                sentences=args.sentences,
            )
            latencies.append((time.perf_counter() - start) * 1000)
            context_ms.append(answer.timings["context"])
            retrieval_ms.append(answer.timings["stage1"] + answer.timings["rerank"])
            retrieved += any(p.doc_id == pmid for p in answer.context.passages)
            cited += any(p.doc_id == pmid for p in answer.citations)
            top = answer.sentences[0].number if answer.sentences else None
            top_cited += top is not None and answer.context.passage(top).doc_id == pmid

    n = len(questions)
    table = "\n".join(
        [
            "| measure | value |",
            "|---|---:|",
            f"| questions | {n} |",
            f"| own abstract cited (any of the {args.sentences} sentences) | **{cited / n:.1%}** |",
            f"| own abstract cited by the top sentence | {top_cited / n:.1%} |",
            f"| own abstract among the {args.top_k} passages (ceiling) | {retrieved / n:.1%} |",
            f"| median latency per question | {statistics.median(latencies):.0f} ms |",
            f"| p95 latency per question | {statistics.quantiles(latencies, n=20)[-1]:.0f} ms |",
            f"| of which stage 1 + rerank (median) | {statistics.median(retrieval_ms):.0f} ms |",
            f"| of which context assembly (median) | {statistics.median(context_ms):.1f} ms |",
        ]
    )
    command = (
        "nice .venv/bin/python benchmarks/answer_pubmedqa.py"
        + (f" --model {args.model}" if args.model else "")
        + (f" --limit {args.limit}" if args.limit else "")
    )
    body = (
        "### Extractive answers on PubMedQA\n\n"
        f"Reranker `{model}`, hybrid stage 1 with {args.candidates} candidates, top {args.top_k} passages, "
        f"{args.sentences} sentences per answer, no language model. Corpus: the {len(records)} PubMedQA "
        "abstracts (default chunking, 256 tokens). Latency is one `ask(pipeline, ...)` on this shared 2-core "
        f"CPU machine (noisy).\n\n{table}\n\nCommand: `{command}`"
    )
    print(body)
    if not args.no_write:
        write_section("answer-pubmedqa", body, DOCS / "answer.md")


if __name__ == "__main__":
    main()
