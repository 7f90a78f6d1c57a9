"""Stage-1 query latency, open time and memory at 100,000 chunks.

The corpus repeats and perturbs real SciFact abstracts: each copy drops a few words (so BM25 statistics
differ per copy) and its vector is the real bf16 embedding plus small Gaussian noise, re-normalised.
Embedding 100k chunks on this 2-core machine would take hours, and the query path does not care how
the stored vectors were made. Build once (cached in .winnow-cache/), then measure in a fresh process:
Index.open + loading of the derived files, the p50/p95 of hybrid search (query embedding included: ONNX
Runtime fp32 on a CPU, exported once and cached before timing starts), and the process's peak resident
memory.

Run: nice .venv/bin/python benchmarks/stage1_latency.py --chunks 100000
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _common import CACHE, DATA, peak_rss_mib
from markdown_report import write_section

SOURCE_INDEX = CACHE / "scifact-whole"  # built by stage1_quality.py
QUERIES_FILE = "scifact-test-queries.json"


def build(path: Path, chunks: int) -> None:
    from winnow.records import Document
    from winnow.retrieve import Index
    from winnow.retrieve.chunking import Chunker
    from winnow.retrieve.sqlite_store import Store

    source = Store(SOURCE_INDEX / "index.sqlite")
    rows = source.db.execute(
        "SELECT d.id, d.title, d.text, c.embedding FROM documents d JOIN chunks c ON c.doc_id = d.id"
    ).fetchall()
    rng = random.Random(0)
    noise = np.random.default_rng(0)
    index = Index.create(path, chunk_tokens=None)
    store = index._store  # bulk load with precomputed vectors: the benchmark's only use of internals
    chunker = Chunker(None, None)
    batch_docs, batch_chunks, made = [], [], 0
    while made < chunks:
        for doc_id, title, text, blob in rows:
            if made >= chunks:
                break
            words = text.split()
            for _ in range(3):
                if len(words) > 5:
                    words.pop(rng.randrange(len(words)))
            copy = Document(
                id=f"{doc_id}-{made}", text=" ".join(words), title=title, source=f"copy{made % 10}"
            )
            vector = np.frombuffer(blob, dtype=np.float32) + noise.normal(0, 0.01, 384).astype(np.float32)
            vector /= np.linalg.norm(vector)
            [chunk] = chunker.split(copy.id, copy.text)
            batch_docs.append((copy, index._content_hash(copy)))
            batch_chunks.append((chunk, f"{made}", vector))
            made += 1
            if len(batch_docs) == 5000:
                store.write_batch(batch_docs, batch_chunks, index._generation() + 1)
                batch_docs, batch_chunks = [], []
                print(f"\rwritten {made}", end="", flush=True)
    if batch_docs:
        store.write_batch(batch_docs, batch_chunks, index._generation() + 1)
    print("\nbuilding BM25 + HNSW …")
    start = time.perf_counter()
    index._rebuild()
    print(f"derived files built in {time.perf_counter() - start:.1f} s")
    index.close()


def measure(path: Path, queries: list[str]) -> dict:
    """Runs in a fresh process so open time and memory are those of a query-serving process."""
    import torch

    from winnow.retrieve import Index
    from winnow.retrieve.dense import shared_embedder

    start = time.perf_counter()
    index = Index.open(path)
    index.search("warm up the derived files", k=10, mode="bm25")
    open_s = time.perf_counter() - start
    shared_embedder(index.embedding_model).encode_query("load the model")
    results = {
        "open_s": open_s,
        "chunks": index.stats().chunks,
        "hnsw": index.stats().hnsw,
        "threads": torch.get_num_threads(),
    }
    for mode in ("bm25", "dense", "hybrid"):
        times = []
        for query in queries:
            start = time.perf_counter()
            index.search(query, k=100, mode=mode)
            times.append((time.perf_counter() - start) * 1000)
        times.sort()
        results[mode] = {"p50_ms": statistics.median(times), "p95_ms": times[int(len(times) * 0.95) - 1]}
    embed_times = []
    embedder = shared_embedder(index.embedding_model)
    for query in queries:
        start = time.perf_counter()
        embedder.encode_query(query)
        embed_times.append((time.perf_counter() - start) * 1000)
    results["query_embedding_p50_ms"] = statistics.median(embed_times)
    vectors = [embedder.encode_query(query) for query in queries]
    search_times = []
    for vector in vectors:
        start = time.perf_counter()
        index._load_derived().vectors.search(vector, 100)
        search_times.append((time.perf_counter() - start) * 1000)
    results["vector_search_p50_ms"] = statistics.median(search_times)
    results["peak_rss_mib"] = peak_rss_mib()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # the child: reads the queries the parent saved, so it imports no evaluation code
        queries = json.loads((args.measure / QUERIES_FILE).read_text())
        print(json.dumps(measure(args.measure, queries)))
        return
    from winnow.evaluation.datasets import load_beir

    path = CACHE / f"latency-{args.chunks}"
    if not (path / "index.sqlite").exists():
        build(path, args.chunks)
    queries = list(load_beir(DATA / "beir" / "scifact").queries.values())
    (path / QUERIES_FILE).write_text(json.dumps(queries))
    runs = []
    for _ in range(3):
        out = subprocess.run(
            [sys.executable, __file__, "--measure", str(path)], capture_output=True, text=True
        )
        if out.returncode:
            raise SystemExit(out.stderr)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(runs[-1])

    def med(get) -> float:
        return statistics.median(get(r) for r in runs)

    load = __import__("os").getloadavg()[0]
    table = [
        "| measure | median of 3 processes |",
        "|---|---:|",
        f"| chunks | {runs[0]['chunks']:,} (HNSW: {runs[0]['hnsw']}) |",
        f"| open + load derived files | {med(lambda r: r['open_s']):.2f} s |",
        f"| query embedding alone, p50 | {med(lambda r: r['query_embedding_p50_ms']):.1f} ms |",
        f"| vector search alone (k=100), p50 | {med(lambda r: r['vector_search_p50_ms']):.2f} ms |",
    ]
    for mode in ("bm25", "dense", "hybrid"):
        table.append(
            f"| {mode} search k=100, p50 / p95 | {med(lambda r, m=mode: r[m]['p50_ms']):.1f} / "
            f"{med(lambda r, m=mode: r[m]['p95_ms']):.1f} ms |"
        )
    table.append(
        f"| peak resident memory of the query process | {med(lambda r: r['peak_rss_mib']):.0f} MiB |"
    )
    write_section(
        "stage1-latency",
        "### Query latency and memory at 100k chunks\n\n"
        f"{args.chunks:,} chunks made by repeating and perturbing SciFact abstracts (see the benchmark's "
        "docstring), 300 SciFact test queries, one fresh process per run, 2 shared CPU cores "
        f"(load average at the end {load:.1f}), {runs[0]['threads']} threads. Dense and hybrid include "
        "the query embedding (ONNX Runtime fp32). "
        f"`nice .venv/bin/python benchmarks/stage1_latency.py --chunks {args.chunks}`\n\n" + "\n".join(table),
    )


if __name__ == "__main__":
    main()
