"""Scale-out on Ray, measured on this machine: `winnow index --ray` with 1 and 2 actors and `winnow serve
--ray` with 1 and 2 replicas, beside what a user would run instead (plain `winnow index`, plain
`winnow serve`), and the per-chunk and per-core figures docs/scaling.md's sizing table is built from.

1. Embedding rate of the default embedder alone, 1 and 2 torch threads (chunks of SciFact abstracts).
2. Indexing the first --docs SciFact abstracts: plain `Index.add` (2 threads), then on a local Ray
   (``ray.init(num_cpus=2)``) 1 actor x 1 CPU, 2 actors x 1 CPU, 1 actor x 2 CPUs. Wall time of a
   fresh index, and the fixed cost of a run (the same run again: everything committed, nothing embedded).
3. Stage-1 size per chunk: the SQLite file and the derived search files of that index, and the HNSW
   graph (built on --hnsw-vectors random unit vectors: small indexes search exactly and keep none).
4. Serving (TEI's /rerank, SciFact queries, passages of ~128 tokens, every answer checked against its own
   request): plain `winnow serve` (2 threads) and `winnow serve --ray` with 1 replica x 1 CPU, 2 replicas
   x 1 CPU, 1 replica x 2 CPUs; closed loop at 1 / 4 / 8 clients, --small passages per request; one
   request of 20 passages alone; then, for the two Ray settings that use both cores, the highest
   open-loop rate of requests of --capacity-passages passages whose p99 stays <= 500 ms.

    nice -n 0 python benchmarks/scaling.py            # writes docs/scaling.md's measured section
    python benchmarks/scaling.py --docs 200 --no-write  # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import DATA, REPO
from markdown_report import write_section
from serve_load import build_requests, closed_loop, free_port, percentile, send, start_server

from winnow.models.hardware import cpu_bf16_units, cpu_name

DOC = REPO / "docs" / "scaling.md"
P99_TARGET_S = 0.5
# Not measured (no GPU here): all-MiniLM-L6-v2 costs about 6 GFLOP per 256-token chunk (22M parameters,
# 6 layers); one L4-class GPU at a quarter of its ~120 TFLOP/s fp16 peak would embed about 5,000 a second.
GPU_CHUNKS_PER_S_ESTIMATE = 5_000
CLOSED_LOOP_CLIENTS = (1, 4, 8)


def corpus(folder: Path, docs: int) -> Path:
    lines = (DATA / "beir" / "scifact" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:docs]
    (folder / "corpus").mkdir()
    (folder / "corpus" / "abstracts.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder / "corpus"


def embedding_rates(source: Path) -> tuple[int, float, dict[int, float]]:
    """Chunks, their mean length in tokens, and chunks per second of the embedder alone per thread count."""
    import torch

    from winnow.records import title_and_text
    from winnow.retrieve import Index
    from winnow.retrieve.dense import Embedder
    from winnow.retrieve.ingest import iter_documents

    with tempfile.TemporaryDirectory() as tmp, Index.create(Path(tmp) / "i") as index:
        docs = list(iter_documents([source]))
        texts = [title_and_text(d.title, c.text) for d in docs for c in index.chunker.split(d.id, d.text)]
    embedder = Embedder()
    tokens = statistics.mean(len(e.ids) for e in embedder.tokenizer.encode(texts, embedder.max_length))
    embedder.encode(texts[:64])  # load and warm up
    rates = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        started = time.perf_counter()
        embedder.encode(texts)
        rates[threads] = len(texts) / (time.perf_counter() - started)
        print(f"embedder, {threads} thread(s): {rates[threads]:.1f} chunks/s", flush=True)
    torch.set_num_threads(2)
    return len(texts), tokens, rates


def index_runs(source: Path, work: Path) -> list[dict]:
    """Plain and Ray indexing of ``source``; each Ray setting also run a second time on its full index."""
    import ray

    from winnow.retrieve import Index
    from winnow.retrieve.ingest import IngestReport, expand_paths, iter_documents
    from winnow.scale.indexing import embed_into

    rows = []
    folder = work / "plain"
    started = time.perf_counter()
    with Index.create(folder) as index:
        stats = index.add(iter_documents([source]), progress=False)
    rows.append({"setting": "plain `winnow index` (one process, 2 threads)", "chunks": stats.chunks_embedded,
                 "seconds": time.perf_counter() - started, "rerun": None})  # fmt: skip
    print(rows[-1], flush=True)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        files = list(expand_paths([source], IngestReport()))
        for actors, cpus in ((1, 1.0), (2, 1.0), (1, 2.0)):
            folder = work / f"ray-{actors}x{cpus:g}"
            times = []
            for _ in range(2):  # a fresh index, then the same run with everything committed
                with Index.open_or_create(folder) as index:
                    started = time.perf_counter()
                    stats, _ = embed_into(index, files, actors=actors, cpus_per_actor=cpus, progress=False)
                    times.append(time.perf_counter() - started)
                    if len(times) == 1:
                        chunks = stats.chunks_embedded
            rows.append({"setting": f"Ray, {actors} actor{'s' if actors > 1 else ''} x {cpus:g} CPU",
                         "chunks": chunks, "seconds": times[0], "rerun": times[1]})  # fmt: skip
            print(rows[-1], flush=True)
    finally:
        ray.shutdown()
    return rows


def sizes_per_chunk(index_dir: Path, hnsw_vectors: int) -> dict[str, float]:
    """Bytes per chunk: SQLite on disk, each derived search file, and an HNSW graph of the index's kind."""
    from winnow.retrieve import Index
    from winnow.retrieve.vector_search import VectorIndex

    with Index.open(index_dir) as index:
        chunks = index.stats().chunks
    derived = index_dir / "derived"
    bm25 = sum(p.stat().st_size for p in (derived / "bm25").rglob("*") if p.is_file())
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((hnsw_vectors, 384), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with tempfile.TemporaryDirectory() as tmp:
        VectorIndex.build(vectors, hnsw_threshold=0).save(Path(tmp))
        hnsw = (Path(tmp) / "hnsw.usearch").stat().st_size / hnsw_vectors
    return {
        "chunks": chunks,
        "sqlite": (index_dir / "index.sqlite").stat().st_size / chunks,
        "vectors": (derived / "vectors.npy").stat().st_size / chunks,
        "bm25": bm25 / chunks,
        "hnsw": hnsw,
    }


async def open_loop(url: str, bodies: list[dict], rate: float, seconds: float) -> dict:
    """``rate`` requests/s offered for ``seconds`` on a fixed schedule, whatever the answers."""
    import httpx

    total = max(1, int(rate * seconds))
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        started, tasks = time.perf_counter(), []
        for i in range(total):
            await asyncio.sleep(max(0.0, started + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(send(client, bodies[i % len(bodies)])))
        outcomes = await asyncio.gather(*tasks)
    ok = [o for o in outcomes if o.status == 200 and o.correct]
    return {"rate": rate, "sent": total, "ok": len(ok), "p50": percentile([o.seconds for o in ok], 50),
            "p99": percentile([o.seconds for o in ok], 99)}  # fmt: skip


async def latencies(url: str, bodies: list[dict], clients: int) -> tuple[float, float, float]:
    """Closed loop: requests/s, p50 and p99 seconds with ``clients`` clients."""
    import httpx

    seconds: list[float] = []
    pending = list(bodies)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while pending:
            outcome = await send(client, pending.pop())
            if outcome.status != 200 or not outcome.correct:
                raise SystemExit(f"a request failed or got another's answer: {outcome}")
            seconds.append(outcome.seconds)

    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        started = time.perf_counter()
        await asyncio.gather(*(client_loop(client) for _ in range(clients)))
        wall = time.perf_counter() - started
    return len(bodies) / wall, percentile(seconds, 50), percentile(seconds, 99)


def measure(url: str, small: list[dict], large: list[dict], requests: int) -> dict:
    asyncio.run(closed_loop(url, small[:2], 1))  # warm-up
    out: dict = {"closed": {}}
    for clients in CLOSED_LOOP_CLIENTS:
        out["closed"][clients] = asyncio.run(latencies(url, small[:requests], clients))
        print(f"  {clients} clients: {out['closed'][clients]}", flush=True)
    out["large_alone"] = statistics.median(asyncio.run(latencies(url, [b], 1))[1] for b in large[:3])
    print(f"  one request of 20 passages alone: {out['large_alone']:.2f} s", flush=True)
    return out


def capacity_steps(url: str, bodies: list[dict], start: float, seconds: float) -> list[dict]:
    """Open-loop steps at rising rates from ``start`` until p99 passes the target or a request fails."""
    steps, rate = [], start
    for _ in range(10):
        steps.append(asyncio.run(open_loop(url, bodies, rate, seconds)))
        print(f"  offered {rate:.2f} req/s: {steps[-1]}", flush=True)
        if steps[-1]["p99"] > P99_TARGET_S or steps[-1]["ok"] < steps[-1]["sent"]:
            break
        rate *= 1.25
    return steps


def capacity(steps: list[dict]) -> float:
    return max((s["rate"] for s in steps if s["p99"] <= P99_TARGET_S and s["ok"] == s["sent"]), default=0.0)


def serve_runs(args: argparse.Namespace) -> tuple[dict, dict[str, list[dict]]]:
    """Throughput and latency per setting, and open-loop steps of the two Ray settings using both cores."""
    import ray

    from winnow.scale.serving import APP_NAME, Scaling, deploy
    from winnow.serve import ServeSettings

    large = build_requests(args.model, 64, (20, 20))
    small = [{**b, "texts": b["texts"][: args.small]} for b in large]
    tight = [{**b, "texts": b["texts"][: args.capacity_passages]} for b in large]
    results: dict[str, dict] = {}
    process, url = start_server(
        argparse.Namespace(
            model=args.model, max_concurrent=64, request_timeout=300, max_batch_tokens=4096, max_wait_ms=5
        )
    )
    try:
        print("plain winnow serve", flush=True)
        results["plain `winnow serve` (2 threads)"] = measure(url, small, large, args.requests)
    finally:
        process.terminate()
        process.wait(timeout=60)
    port = free_port()
    # Requests repeat: with the score cache on, the rows would measure cache hits, not the model.
    settings = ServeSettings(
        models=(args.model,), port=port, max_concurrent_requests=64, request_timeout=300, cache_entries=0
    )
    url = f"http://127.0.0.1:{port}"
    steps: dict[str, list[dict]] = {}
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    from ray import serve

    try:
        for replicas, cpus in ((1, 1.0), (2, 1.0), (1, 2.0)):
            name = f"`winnow serve --ray`, {replicas} replica{'s' if replicas > 1 else ''} x {cpus:g} CPU"
            print(name, flush=True)
            deploy(settings, Scaling(replicas=replicas, cpus_per_replica=cpus))
            results[name] = measure(url, small, large, args.requests)
            if replicas * cpus == 2:  # both cores: the open-loop capacity at p99 <= 500 ms
                alone = asyncio.run(latencies(url, tight[:8], 1))[0]
                steps[name] = capacity_steps(url, tight, alone * 0.4, args.step_seconds)
            serve.delete(APP_NAME)
    finally:
        serve.shutdown()
        ray.shutdown()
    return results, steps


def sizing(chunks_256_per_core: float, sizes: dict[str, float], per_core: float, passages: int) -> list[str]:
    """The sizing tables: corpus size from the per-chunk and per-core figures, traffic from the replica's."""
    memory = sizes["vectors"] + sizes["bm25"] + sizes["hnsw"]
    lines = [
        "| chunks | stage-1 memory (vectors + BM25 + HNSW) | SQLite on disk | embedding: core-hours "
        "| embedding: GPU-hours (estimate) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for n in (1e6, 1e7, 1e8):
        lines.append(
            f"| {n / 1e6:,.0f}M | {n * memory / 2**30:,.1f} GiB | {n * sizes['sqlite'] / 2**30:,.1f} GiB | "
            f"{n / chunks_256_per_core / 3600:,.0f} | {n / GPU_CHUNKS_PER_S_ESTIMATE / 3600:,.1f} |"
        )
    lines += [
        "",
        f"| requests/s of {passages} passages | cores of this CPU at p99 <= 500 ms (measured rate) |",
        "|---:|---:|",
    ]
    for n in (1, 10, 100):
        needed = "not reachable" if per_core <= 0 else f"{math.ceil(n / per_core):,}"
        lines.append(f"| {n} | {needed} |")
    return lines


def report(args, cpu: str, load: str, embedding, index_rows, sizes, serving, steps) -> str:
    chunks, tokens, rates = embedding
    chunks_256_per_core = rates[1] * tokens / 256
    capacities = {name: capacity(s) for name, s in steps.items()}
    best = max(capacities, key=capacities.get)
    per_core = capacities[best] / 2  # both settings use the machine's 2 cores
    lines = [
        f"Measured {time.strftime('%Y-%m-%d')} on {cpu}, 2 cores; {load}. Ray {args.ray_version}, "
        "local cluster `ray.init(num_cpus=2)`, workers at nice 0 like the baselines; "
        f"torch {args.torch_version}. "
        f"`python benchmarks/scaling.py --docs {args.docs}`.",
        "",
        f"**Embedding alone** (all-MiniLM-L6-v2, fp32, {chunks} chunks of {tokens:.0f} tokens on average "
        f"from {args.docs} SciFact abstracts): {rates[1]:.1f} chunks/s on 1 thread, {rates[2]:.1f} on 2 "
        f"({rates[2] / rates[1]:.2f}x); scaled to 256-token chunks, {chunks_256_per_core:.1f} chunks/s "
        "per core.",
        "",
        "| indexing | chunks | wall s (fresh index) | chunks/s | rerun, all committed: s |",
        "|---|---:|---:|---:|---:|",
        *(
            f"| {r['setting']} | {r['chunks']} | {r['seconds']:.1f} | {r['chunks'] / r['seconds']:.1f} | "
            f"{'-' if r['rerun'] is None else round(r['rerun'], 1)} |"
            for r in index_rows
        ),
        "",
        f"**Stage-1 size per chunk** (the {sizes['chunks']}-chunk index above; HNSW measured on "
        f"{args.hnsw_vectors:,} random unit vectors, f16, connectivity 16): SQLite {sizes['sqlite']:.0f} B "
        f"on disk, search files in memory: vectors {sizes['vectors']:.0f} B, BM25 {sizes['bm25']:.0f} B, "
        f"HNSW {sizes['hnsw']:.0f} B; {sizes['vectors'] + sizes['bm25'] + sizes['hnsw']:.0f} B in all.",
        "",
        f"**Serving** (TEI /rerank, model `{args.model}`, backend auto; {args.small} passages of ~128 tokens "
        f"per request unless said; {args.requests} requests per row; the load generator shares the 2 cores):",
        "",
        "| service | req/s, 1 client | p50 / p99 s | req/s, 4 clients | p50 / p99 s | req/s, 8 clients "
        "| p50 / p99 s | 20 passages alone: s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, r in serving.items():
        cells = [f"{r['closed'][c][0]:.2f} | {r['closed'][c][1]:.2f} / {r['closed'][c][2]:.2f}"
                 for c in CLOSED_LOOP_CLIENTS]  # fmt: skip
        lines.append(f"| {name} | {' | '.join(cells)} | {r['large_alone']:.2f} |")
    for name, rows in steps.items():
        lines += [
            "",
            f"Open loop, {name}, {args.capacity_passages} passages per request, "
            f"{args.step_seconds:g} s a step: highest rate with p99 <= {P99_TARGET_S:g} s "
            f"**{capacities[name]:.2f} req/s**.",
            "",
            "| offered req/s | answered | p50 s | p99 s |",
            "|---:|---:|---:|---:|",
            *(
                f"| {s['rate']:.2f} | {s['ok']} of {s['sent']} | {s['p50']:.2f} | {s['p99']:.2f} |"
                for s in rows
            ),
        ]
    lines += [
        "",
        f"**Sizing from these figures** ({chunks_256_per_core:.1f} chunks of 256 tokens per core-second; "
        f"{per_core:.2f} req/s of {args.capacity_passages} passages per core, from {best}; GPU column: "
        f"an estimate, {GPU_CHUNKS_PER_S_ESTIMATE:,} chunks/s per GPU, see below):",
        "",
        *sizing(chunks_256_per_core, sizes, per_core, args.capacity_passages),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=600, help="SciFact abstracts to index")
    parser.add_argument("--hnsw-vectors", type=int, default=20_000)
    parser.add_argument("--model", default="winnow-minilm-l6", help="the served reranker")
    parser.add_argument("--small", type=int, default=4, help="passages per request in the serving rows")
    parser.add_argument("--capacity-passages", type=int, default=2, help="passages per request, open loop")
    parser.add_argument("--requests", type=int, default=24, help="requests per closed-loop row")
    parser.add_argument("--step-seconds", type=float, default=20)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/scaling.md alone")
    args = parser.parse_args()
    # Ray starts its workers at nice 15; the baselines run at 0. Same priority for a fair comparison.
    os.environ["RAY_worker_niceness"] = "0"
    import ray
    import torch

    args.ray_version, args.torch_version = ray.__version__, torch.__version__
    cpu = f"{cpu_name()}, bf16 units: {cpu_bf16_units() or 'none'}"
    load_before = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="winnow-scaling-"))
    try:
        source = corpus(work, args.docs)
        embedding = embedding_rates(source)
        index_rows = index_runs(source, work)
        sizes = sizes_per_chunk(work / "plain", args.hnsw_vectors)
        serving, steps = serve_runs(args)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    load = f"load average {load_before:.1f} before the run, {os.getloadavg()[0]:.1f} after"
    text = report(args, cpu, load, embedding, index_rows, sizes, serving, steps)
    print(text)
    print(json.dumps({"embedding": embedding, "sizes": sizes}, default=str))
    if not args.no_write:
        write_section("scaling", text, path=DOC)


if __name__ == "__main__":
    main()
