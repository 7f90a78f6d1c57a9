"""Stage 1 over an evaluation corpus (id -> text): the cached on-disk index and an in-memory BM25.

Evaluation, calibration data and hard-negative mining (``winnow.training.negatives``) all search a
benchmark corpus by query; they share these so a corpus is indexed once and every one of them recalls
candidates the way ``winnow.retrieve`` does for users.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from winnow.evaluation.cache import cache_dir

if TYPE_CHECKING:
    from winnow.retrieve import Index

# query id, query text, depth -> [(doc id, stage-1 score)], best first
Stage1 = Callable[[str, str, int], list[tuple[str, float]]]


def _corpus_digest(corpus: dict[str, str]) -> str:
    digest = hashlib.sha1()
    for doc_id, text in corpus.items():
        digest.update(doc_id.encode())
        digest.update(b"\x00")
        digest.update(text.encode("utf-8", "surrogatepass"))
        digest.update(b"\x01")
    return digest.hexdigest()[:12]


def open_index(name: str, corpus: dict[str, str], embedding_model: str, progress: bool = True) -> Index:
    """The stage-1 index of ``corpus`` (id -> text), built once under the cache dir and reopened later.

    One chunk per document (BEIR judges whole documents). The folder name carries a digest of the
    corpus, so an edited corpus gets a fresh index instead of a stale one; evaluation and training
    (hard-negative mining) share it.
    """
    from winnow.records import Document
    from winnow.retrieve import Index

    safe_model = "".join(c if c.isalnum() or c in "-_." else "_" for c in embedding_model)
    path = cache_dir() / "index" / f"{name}-{safe_model}-{_corpus_digest(corpus)}"
    ready = path / "complete"
    if ready.is_file():
        return Index.open(path)
    if path.exists():  # an interrupted build: start again rather than evaluate half a corpus
        import shutil

        shutil.rmtree(path)
    index = Index.create(path, embedding_model=embedding_model, chunk_tokens=None)
    index.add((Document(id=d, text=t) for d, t in corpus.items()), progress=progress)
    index.close()
    ready.write_text("built\n", encoding="utf-8")
    return Index.open(path)


def index_stage1(index: Index, mode: str) -> Stage1:
    """Stage 1 through ``winnow.retrieve``: one ranked, de-duplicated doc list per query."""

    def search(query_id: str, query: str, k: int) -> list[tuple[str, float]]:
        ranked: list[tuple[str, float]] = []
        seen: set[str] = set()
        hits = (
            index.search(query, k=k, mode="hybrid", fusion="rrf")
            if mode == "rrf"
            else index.search(query, k=k, mode=mode)
        )
        for hit in hits:
            if hit.doc_id not in seen:
                seen.add(hit.doc_id)
                ranked.append((hit.doc_id, hit.score))
        return ranked

    return search


def bm25_candidates(corpus: dict[str, str]) -> Callable[[str, int], list[tuple[str, str]]]:
    """Stage 1's BM25 (``winnow.retrieve.bm25``) over ``corpus`` in memory: query, k -> [(doc id, text)]
    best first, documents with no query term left out."""
    from winnow.retrieve.bm25 import BM25Index

    ids = list(corpus)
    index = BM25Index.build([corpus[i] for i in ids])

    def search(query: str, k: int) -> list[tuple[str, str]]:
        positions, _ = index.search(query, k)
        return [(ids[p], corpus[ids[p]]) for p in positions.tolist()]

    return search
