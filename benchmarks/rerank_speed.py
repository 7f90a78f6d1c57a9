"""Stage-2 speed: Winnow's reranker against sentence-transformers' CrossEncoder.predict, same model,
same pairs, same process.

Workload (a): 50 BM25 candidates of a SciFact test query (real abstracts, about 360 tokens per pair
at max_length 512). Workload (b): 50 chunks of about 128 tokens cut from SciFact abstracts.
Every configuration reranks the same queries; the figure is the median over queries and repeats.
It also measures this machine's bf16/fp32 matmul rate and the model's FLOPs for the workload, so
the distance to the hardware limit is visible, the ranking agreement with fp32 (Kendall tau per
query), and the peak memory of a fresh process reranking workload (a).

    python benchmarks/rerank_speed.py   # writes the "rerank_speed" section of docs/benchmarks.md
    python benchmarks/rerank_speed.py --model PATH --queries 5 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import peak_rss_mib
from markdown_report import write_section
from scipy.stats import kendalltau

import winnow.models.gated_cross_encoder  # noqa: F401  (sentence-transformers loads the gated model too)
from winnow import Reranker
from winnow.models import resolve_model

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "scifact"
CONFIGS = [  # (label, backend, dtype)
    ("winnow torch fp32", "torch", "fp32"),
    ("winnow torch bf16", "torch", "bf16"),
    ("winnow onnx fp32", "onnx", None),
    ("winnow onnx int8", "onnx-int8", None),
]


def load_workloads(n_queries: int, tokenizer) -> dict[str, list[tuple[str, list[str]]]]:
    """(query, 50 candidates) lists for workload (a) abstracts and (b) ~128-token chunks."""
    import bm25s
    import Stemmer

    corpus = [json.loads(line) for line in (SCIFACT / "corpus.jsonl").open(encoding="utf-8")]
    texts = [f"{d['title']} {d['text']}" for d in corpus]
    test_ids = {line.split("\t")[0] for line in (SCIFACT / "qrels/test.tsv").read_text().splitlines()[1:]}
    queries = [json.loads(line) for line in (SCIFACT / "queries.jsonl").open(encoding="utf-8")]
    queries = [q["text"] for q in queries if q["_id"] in test_ids][:n_queries]
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False
    )
    hits, _ = retriever.retrieve(
        bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False),
        k=50,
        show_progress=False,
    )
    abstracts = [(q, [texts[i] for i in row]) for q, row in zip(queries, hits, strict=True)]
    chunks = []
    for q, docs in abstracts:
        pieces = []
        for doc in docs:
            ids = tokenizer(doc, add_special_tokens=False)["input_ids"]
            pieces += [tokenizer.decode(ids[i : i + 128]) for i in range(0, len(ids) - 64, 128)]
        chunks.append((q, pieces[:50]))
    return {"(a) 50 abstracts": abstracts, "(b) 50 chunks of 128 tokens": chunks}


def matmul_gflops(dtype: torch.dtype) -> float:
    """Measured rate of a [2048 x 384] @ [384 x 1536] product, the shape of the model's FFN."""
    a = torch.randn(2048, 384, dtype=dtype)
    w = torch.randn(1536, 384, dtype=dtype)
    for _ in range(3):
        torch.nn.functional.linear(a, w)
    rates = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(20):
            torch.nn.functional.linear(a, w)
        rates.append(2 * 2048 * 384 * 1536 * 20 / (time.perf_counter() - start) / 1e9)
    return statistics.median(rates)


def model_flops(config: dict, lengths: list[int]) -> float:
    """Forward FLOPs of a BERT-style encoder for pairs of these token lengths (no padding)."""
    h, i, layers = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    return sum(layers * (2 * n * (4 * h * h + 2 * h * i) + 4 * n * n * h) for n in lengths)


def time_runs(rank, workload, repeats: int) -> tuple[float, list[np.ndarray]]:
    """Median seconds per query over queries x repeats, and the scores of the last repeat."""
    rank(*workload[0])  # warm-up
    times, scores = [], []
    for _ in range(repeats):
        scores = []
        for query, docs in workload:
            start = time.perf_counter()
            scores.append(np.asarray(rank(query, docs), dtype=np.float64))
            times.append(time.perf_counter() - start)
    return statistics.median(times), scores


def time_shares(reranker: Reranker, query: str, docs: list[str]) -> dict[str, float]:
    """Share of the CPU time of one rerank spent in attention, in the linear layers, and elsewhere."""
    from torch.profiler import ProfilerActivity, profile

    reranker.score([(query, d) for d in docs])  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as recorded:
        reranker.score([(query, d) for d in docs])
    spent = {"attention": 0.0, "linear layers": 0.0, "other": 0.0}
    for event in recorded.key_averages():
        if "attention" in event.key or event.key in ("aten::_softmax", "aten::bmm"):
            spent["attention"] += event.self_cpu_time_total
        elif event.key in ("aten::addmm", "aten::mm", "mkldnn::_linear_pointwise"):
            spent["linear layers"] += event.self_cpu_time_total
        else:
            spent["other"] += event.self_cpu_time_total
    total = sum(spent.values())
    return {part: value / total for part, value in spent.items()}


def peak_memory_child(model_dir: str, backend: str, dtype: str | None, workload, queue) -> None:
    reranker = Reranker(model_dir, backend=backend, dtype=dtype, cache=0)
    for query, docs in workload:
        reranker.rerank(query, docs)
    queue.put(peak_rss_mib() / 1024)


def peak_memory_gib(model_dir: str, backend: str, dtype: str | None, workload) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=peak_memory_child, args=(model_dir, backend, dtype, workload, queue))
    process.start()
    value = queue.get()
    process.join()
    return value


def build_untrained_cross_encoder() -> Path:
    """all-MiniLM-L6-v2 with a seeded head: production size, meaningless scores (speed only)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    target = Path(tempfile.mkdtemp()) / "minilm-cross-encoder"
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(resolve_model("all-minilm-l6"), num_labels=1)
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(resolve_model("all-minilm-l6")).save_pretrained(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="winnow-minilm-l6", help="cross-encoder to time (default: the bundled one)"
    )
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--no-write", action="store_true", help="print only; do not update docs/benchmarks.md"
    )
    args = parser.parse_args()

    try:
        model_dir = resolve_model(args.model)
        model_label = args.model
    except FileNotFoundError:
        model_dir = build_untrained_cross_encoder()
        model_label = "untrained all-MiniLM-L6-v2 cross-encoder (the bundled model was missing)"
        print(f"{args.model} not available; timing an {model_label}")
    from sentence_transformers import CrossEncoder

    # fp32 as sentence-transformers itself advises on CPU (the bundled weights are stored in fp16).
    baseline = CrossEncoder(str(model_dir), device="cpu", model_kwargs={"dtype": torch.float32})
    workloads = load_workloads(args.queries, baseline.tokenizer)
    config = json.loads((model_dir / "config.json").read_text())
    gflops = {"bf16": matmul_gflops(torch.bfloat16), "fp32": matmul_gflops(torch.float32)}
    rerankers = {
        label: Reranker(model_dir, backend=backend, dtype=dtype, cache=0) for label, backend, dtype in CONFIGS
    }

    rows = []
    for name, workload in workloads.items():
        tok = rerankers["winnow torch fp32"].tokenizer
        lengths = [
            len(tok(q, d, truncation="only_second", max_length=512)["input_ids"])
            for q, docs in workload
            for d in docs
        ]
        flops_per_query = model_flops(config, lengths) / len(workload)
        n_docs = len(workload[0][1])
        st_time, _ = time_runs(
            lambda q, d: baseline.predict([(q, x) for x in d], show_progress_bar=False),
            workload,
            args.repeats,
        )
        _, reference = time_runs(
            lambda q, d: rerankers["winnow torch fp32"].score([(q, x) for x in d]),
            workload[: len(workload)],
            1,
        )
        rows.append(
            (
                name,
                "sentence-transformers CrossEncoder.predict (fp32, defaults)",
                st_time,
                1.0,
                None,
                n_docs,
                flops_per_query,
            )
        )
        for label, reranker in rerankers.items():
            seconds, scores = time_runs(
                lambda q, d, r=reranker: r.score([(q, x) for x in d]), workload, args.repeats
            )
            taus = [kendalltau(s, ref).statistic for s, ref in zip(scores, reference, strict=True)]
            rows.append((name, label, seconds, st_time / seconds, min(taus), n_docs, flops_per_query))
        print(
            f"{name}: mean {statistics.mean(lengths):.0f} tokens per pair, "
            f"{flops_per_query / 1e9:.0f} GFLOP per query"
        )

    shares = time_shares(rerankers["winnow torch bf16"], *workloads["(a) 50 abstracts"][0])
    memory = {
        "winnow torch bf16": peak_memory_gib(str(model_dir), "torch", "bf16", workloads["(a) 50 abstracts"]),
        "winnow onnx int8": peak_memory_gib(str(model_dir), "onnx-int8", None, workloads["(a) 50 abstracts"]),
    }

    lines = [
        "## Stage 2: reranking speed (`benchmarks/rerank_speed.py`)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}. Measured matmul rate (FFN shape): bf16 {gflops['bf16']:.0f} GFLOP/s, "
        f"fp32 {gflops['fp32']:.0f} GFLOP/s. Model: {model_label} ({config['num_hidden_layers']} layers, "
        f"hidden {config['hidden_size']}). Median of {args.queries} queries x {args.repeats} repeats, "
        "cache off. Kendall tau: the worst query's rank agreement with Winnow's fp32 scores.",
        "",
        "| workload | configuration | ms / query | pairs / s | speed-up vs ST | min tau vs fp32 "
        "| bf16 matmul limit |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, label, seconds, ratio, tau, n_docs, flops in rows:
        limit = flops / (gflops["bf16"] * 1e9)
        lines.append(
            f"| {name} | {label} | {seconds * 1000:.0f} | {n_docs / seconds:.1f} | {ratio:.2f}x | "
            f"{'-' if tau is None else f'{tau:.3f}'} | "
            f"{limit * 1000:.0f} ms ({limit / seconds:.0%} of it reached) |"
        )
    lines += [
        "",
        "Peak resident memory of a fresh process reranking workload (a): "
        + ", ".join(f"{k} {v:.2f} GiB" for k, v in memory.items())
        + ".",
    ]
    lines += [
        "",
        "Where winnow torch bf16 spends workload (a) (torch.profiler, one query): "
        + ", ".join(f"{part} {share:.0%}" for part, share in shares.items())
        + ". Attention does not get faster in bf16 on this CPU, so it bounds the speed-up over fp32. "
        "On a CPU, torch bf16 keeps the model in fp32 and runs each linear layer as one oneDNN bf16 call "
        "with its bias and GELU fused in (winnow.models.fused_linear); this is why its ranking stays so "
        "close to fp32's.",
    ]
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        write_section("rerank_speed", report)


if __name__ == "__main__":
    main()
