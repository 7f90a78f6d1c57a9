"""Indexing speed: Winnow's Index.add (bf16, token-budget batches, end to end) vs SentenceTransformer fp32.

Both embed the same SciFact texts (title + abstract, max 256 tokens). Winnow's figure includes reading,
chunking, SQLite commits and building BM25 + vector files; the baseline is the embeddings alone, so
the comparison favours the baseline. Runs alternate and the median of ``--runs`` is reported.

Run: nice .venv/bin/python benchmarks/stage1_speed.py --docs 1000 --runs 3
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time

import torch
from _common import DATA
from markdown_report import write_section
from sentence_transformers import SentenceTransformer

from winnow.models import resolve_model
from winnow.records import title_and_text
from winnow.retrieve import Index
from winnow.retrieve.dense import shared_embedder
from winnow.retrieve.ingest import load_beir_corpus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    docs = list(itertools.islice(load_beir_corpus(DATA / "beir" / "scifact"), args.docs))
    texts = [title_and_text(d.title, d.text) for d in docs]
    st = SentenceTransformer(str(resolve_model("all-minilm-l6")), device="cpu")
    st.max_seq_length = 256
    embedder = shared_embedder("all-minilm-l6")  # loaded once, as in a long-running process
    embedder.encode(["load the torch model before the first timed run"])
    winnow_s, st_s = [], []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            with Index.create(os.path.join(tmp, "i"), chunk_tokens=None) as index:
                index.add(docs, progress=False, commit_every_chunks=1024)
            winnow_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        st.encode(texts, batch_size=32, normalize_embeddings=True)
        st_s.append(time.perf_counter() - start)
        print(f"run {run + 1}: winnow {winnow_s[-1]:.1f} s, SentenceTransformer fp32 {st_s[-1]:.1f} s")
    w, s = statistics.median(winnow_s), statistics.median(st_s)
    load = os.getloadavg()[0]
    print(f"median: winnow {w:.1f} s, baseline {s:.1f} s, speed-up {s / w:.2f}x (load average {load:.1f})")
    write_section(
        "stage1-speed",
        "### Indexing speed: SciFact subset\n\n"
        f"First {args.docs} SciFact documents (title + abstract), 2 CPU cores shared with the team, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, Winnow dtype {embedder.dtype}. "
        f"Median of {args.runs} alternating runs; load average at the end {load:.1f}. "
        "`nice .venv/bin/python benchmarks/stage1_speed.py "
        f"--docs {args.docs} --runs {args.runs}`\n\n"
        "| what | seconds (median) | runs |\n|---|---:|---|\n"
        f"| Winnow `Index.add` end to end ({embedder.dtype}, batches of <= {embedder.batch_tokens} tokens, "
        f"SQLite + BM25 + vectors) | {w:.1f} | "
        f"{', '.join(f'{x:.1f}' for x in winnow_s)} |\n"
        f"| `SentenceTransformer.encode` fp32, batch 32 (embeddings only) | {s:.1f} | "
        f"{', '.join(f'{x:.1f}' for x in st_s)} |\n"
        f"| speed-up | {s / w:.2f}x | |",
    )


if __name__ == "__main__":
    main()
