"""Stage-2 speed: Winnow's backends against what a CPU user would pick instead (sentence-transformers'
CrossEncoder.predict, FlashRank's Ranker), same model, same pairs, same process.

Workload (a): 50 BM25 candidates of a SciFact test query (real abstracts, about 360 tokens per pair
at max_length 512). Workload (b): 50 chunks of about 128 tokens cut from SciFact abstracts.
Every engine reranks the same queries, round-robin over several rounds (the machine may be shared;
engines of one round see the same load), and the speed-up is the median of the per-round ratios.
It also measures this machine's bf16/fp32 matmul rate and the model's FLOPs for the workload, so
the distance to the hardware limit is visible, the ranking agreement with fp32 (Kendall tau per
query), and the peak memory of a fresh process reranking workload (a).

    python benchmarks/rerank_speed.py   # writes its section of docs/benchmarks.md, one per kind of CPU:
                                        # AMX, AVX-512 BF16, no bf16 units (SECTIONS below)
    python benchmarks/rerank_speed.py --model PATH --queries 5 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import statistics
import sys
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
from winnow.models.hardware import cpu_bf16_units, cpu_name
from winnow.rerank.backends import choose_backend

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "beir" / "scifact"
BASELINE = "sentence-transformers CrossEncoder.predict (fp32, defaults)"
CONFIGS = [  # (label, backend, dtype); bf16 only where the CPU has bf16 units
    ("winnow torch fp32", "torch", "fp32"),
    ("winnow torch bf16", "torch", "bf16"),
    ("winnow onnx fp32", "onnx", None),
    ("winnow onnx int8", "onnx-int8", None),
    ("winnow openvino fp32", "openvino", None),
]
SECTIONS = {"AMX": "rerank_speed", "AVX-512 BF16": "rerank_speed_avx512_bf16", None: "rerank_speed_no_bf16"}
NOT_MEASURED = (
    "optimum's ONNX Runtime classifier is not in the run: optimum[onnxruntime] 2.1.0 requires "
    "transformers < 4.58 and would replace the installed transformers 5.x."
)


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


def interleaved(engines: dict, workload, rounds: int) -> tuple[dict, dict, dict]:
    """Time every engine on the whole workload, round-robin, rotating the order each round.

    The machine is shared, so load drifts: engines timed in the same round see about the same load, and
    the speed-up is the median over rounds of the per-round ratio to the first engine (the baseline).
    Returns median seconds per query, median speed-up, and each engine's scores (last round).
    """
    query, docs = workload[0]
    for rank in engines.values():
        rank(query, docs[:8])  # warm-up (first-call allocations, lazy compilation)
    per_round = {label: [] for label in engines}
    scores = {}
    labels = list(engines)
    for round_index in range(rounds):
        shift = round_index % len(labels)
        for label in labels[shift:] + labels[:shift]:
            start = time.perf_counter()
            scores[label] = [np.asarray(engines[label](q, docs), dtype=np.float64) for q, docs in workload]
            per_round[label].append((time.perf_counter() - start) / len(workload))
            took = per_round[label][-1]
            print(f"  round {round_index + 1}/{rounds} {label}: {took:.2f} s/query", flush=True)
    baseline = per_round[labels[0]]
    seconds = {label: statistics.median(times) for label, times in per_round.items()}
    speedup = {
        label: statistics.median(b / t for b, t in zip(baseline, times, strict=True))
        for label, times in per_round.items()
    }
    return seconds, speedup, scores


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


def onnx_time_shares(model_dir: Path, reranker: Reranker, query: str, docs: list[str]) -> dict[str, float]:
    """Share of ONNX Runtime's node time per operator type for one rerank (its own profiler)."""
    import onnxruntime as ort

    from winnow.rerank.backends.onnx_backend import exported_model

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.enable_profiling = True
    options.profile_file_prefix = str(Path(tempfile.mkdtemp()) / "ort")
    session = ort.InferenceSession(str(exported_model(model_dir, False)), options)
    inputs = {item.name for item in session.get_inputs()}

    class Profiled:
        num_labels = reranker.backend.num_labels

        def __call__(self, batch):
            return session.run(["logits"], {k: v for k, v in batch.items() if k in inputs})[0]

    backend, reranker.backend = reranker.backend, Profiled()
    try:
        reranker.score([(query, d) for d in docs])
    finally:
        reranker.backend = backend
    events = json.loads(Path(session.end_profiling()).read_text())
    spent: dict[str, float] = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            op = event["args"]["op_name"]
            spent[op] = spent.get(op, 0.0) + event["dur"]
    total = sum(spent.values())
    return dict(sorted(((op, t / total) for op, t in spent.items()), key=lambda item: -item[1]))


def flashrank_ranker(model_dir: Path, onnx_path: Path):
    """FlashRank's Ranker on the same model: the ONNX export in FlashRank's folder layout."""
    from flashrank import Ranker, RerankRequest

    folder = Path(tempfile.mkdtemp()) / model_dir.name
    folder.mkdir()
    (folder / "model.onnx").symlink_to(onnx_path)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((model_dir / name).read_bytes())
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    special = {k: v for k, v in config.items() if k.endswith("_token") and isinstance(v, str)}
    (folder / "special_tokens_map.json").write_text(json.dumps(special))
    # FlashRank knows its models by name; register this one (the package's Ranker module holds the map).
    sys.modules["flashrank.Ranker"].model_file_map[model_dir.name] = "model.onnx"
    ranker = Ranker(model_name=model_dir.name, cache_dir=str(folder.parent), log_level="WARNING")

    def rank(query: str, docs: list[str]) -> list[float]:
        passages = [{"id": i, "text": d} for i, d in enumerate(docs)]
        scored = {p["id"]: float(p["score"]) for p in ranker.rerank(RerankRequest(query, passages))}
        return [scored[i] for i in range(len(docs))]  # sigmoid(logit): the same ranks as the logits

    return rank


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
    parser.add_argument("--rounds", type=int, default=3, help="round-robin rounds over all engines")
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

    from winnow.rerank.backends.onnx_backend import exported_model

    # fp32 as sentence-transformers itself advises on CPU (the bundled weights are stored in fp16).
    baseline = CrossEncoder(str(model_dir), device="cpu", model_kwargs={"dtype": torch.float32})
    workloads = load_workloads(args.queries, baseline.tokenizer)
    config = json.loads((model_dir / "config.json").read_text())
    bf16_units = cpu_bf16_units()
    gflops = {"fp32": matmul_gflops(torch.float32)}
    if bf16_units:
        gflops["bf16"] = matmul_gflops(torch.bfloat16)
    configs = [c for c in CONFIGS if c[2] != "bf16" or bf16_units]
    rerankers = {
        label: Reranker(model_dir, backend=backend, dtype=dtype, cache=0) for label, backend, dtype in configs
    }
    auto_backend, _, auto_dtype = choose_backend("auto", "cpu", None)
    auto_label = next(label for label, b, d in configs if b == auto_backend and (d or "fp32") == auto_dtype)
    engines = {BASELINE: lambda q, d: baseline.predict([(q, x) for x in d], show_progress_bar=False)}
    engines["FlashRank Ranker (same model, ONNX export, its defaults)"] = flashrank_ranker(
        model_dir, exported_model(model_dir, quantized=False)
    )
    for label, reranker in rerankers.items():
        engines[label] = lambda q, d, r=reranker: r.score([(q, x) for x in d])

    rows = []
    for name, workload in workloads.items():
        tok = baseline.tokenizer
        lengths = [
            len(tok(q, d, truncation="only_second", max_length=512)["input_ids"])
            for q, docs in workload
            for d in docs
        ]
        flops_per_query = model_flops(config, lengths) / len(workload)
        print(f"{name}: mean {statistics.mean(lengths):.0f} tokens/pair, {flops_per_query / 1e9:.0f} GFLOP")
        seconds, speedup, scores = interleaved(engines, workload, args.rounds)
        reference = scores["winnow torch fp32"]
        for label in engines:
            taus = [kendalltau(s, ref).statistic for s, ref in zip(scores[label], reference, strict=True)]
            tau = None if label == "winnow torch fp32" else min(taus)
            n_docs = len(workload[0][1])
            rows.append((name, label, seconds[label], speedup[label], tau, n_docs, flops_per_query))

    first = workloads["(a) 50 abstracts"][0]
    shares = (
        time_shares(rerankers["winnow torch bf16"], *first)
        if bf16_units
        else onnx_time_shares(model_dir, rerankers["winnow onnx fp32"], *first)
    )
    memory = peak_memory_gib(str(model_dir), auto_backend, None, workloads["(a) 50 abstracts"])

    units = f"bf16 units: {bf16_units}" if bf16_units else "no bf16 units"
    lines = [
        f"## Stage 2: reranking speed, CPU {f'with {bf16_units}' if bf16_units else 'without bf16 units'} "
        "(`benchmarks/rerank_speed.py`)",
        "",
        f"CPU: {cpu_name()}, {units}; {torch.get_num_threads()} threads, {platform.machine()}, "
        f"torch {torch.__version__}. Measured matmul rate (FFN shape): "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in gflops.items())
        + f". Model: {model_label} ({config['num_hidden_layers']} layers, hidden {config['hidden_size']}). "
        f"{args.queries} {'query' if args.queries == 1 else 'queries'} per workload, all engines timed "
        f"round-robin in one process, {args.rounds} rounds, rotating the order; ms / query is the median "
        "over rounds, the speed-up the median of "
        "the per-round ratios to sentence-transformers (engines in one round share the machine's load). "
        "Cache off. Kendall tau: the worst query's rank agreement with Winnow's torch fp32 scores. "
        f"`auto` on this CPU: {auto_label}.",
        "",
        "| workload | engine | ms / query | pairs / s | speed-up vs ST | min tau vs fp32 "
        "| fp32 matmul limit |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for name, label, secs, ratio, tau, n_docs, flops in rows:
        limit = flops / (gflops["fp32"] * 1e9)
        lines.append(
            f"| {name} | {label} | {secs * 1000:.0f} | {n_docs / secs:.1f} | {ratio:.2f}x | "
            f"{'-' if tau is None else f'{tau:.3f}'} | {limit * 1000:.0f} ms ({limit / secs:.0%} of it) |"
        )
    lines += [
        "",
        f"Peak resident memory of a fresh process reranking workload (a) with `auto` ({auto_label}): "
        f"{memory:.2f} GiB. {NOT_MEASURED}",
        "",
    ]
    if bf16_units:
        lines.append(
            "Where winnow torch bf16 spends workload (a) (torch.profiler, one query): "
            + ", ".join(f"{part} {share:.0%}" for part, share in shares.items())
            + ". On a CPU, torch bf16 keeps the model in fp32 and runs each linear layer as one oneDNN "
            "bf16 call with its bias and GELU fused in (winnow.models.fused_linear)."
        )
    else:
        lines.append(
            "Where winnow onnx fp32 spends workload (a) (ONNX Runtime's profiler, one query, share of "
            "node time): " + ", ".join(f"{op} {share:.0%}" for op, share in list(shares.items())[:8]) + "."
        )
    report = "\n".join(lines)
    print(report)
    if not args.no_write:
        # One section per kind of CPU, so a run on one kind never erases the other kind's figures.
        write_section(SECTIONS[bf16_units], report)


if __name__ == "__main__":
    main()
