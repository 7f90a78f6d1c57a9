"""Hard-negative mining: passages that stage 1 ranks high for a query but that are not known positives.

Random negatives are too easy to teach a reranker anything; the passages stage 1 confuses with the answer
are exactly the ones stage 2 must learn to push down. BM25 finds lexical look-alikes; Winnow's dense and
hybrid stage 1 find the semantic ones a bi-encoder-like reranker is most tempted by.
"""

from __future__ import annotations

from tqdm.auto import tqdm

from winnow.training.data import BeirSplit, Group, LoadReport

MINING_MODES = ("bm25", "dense", "hybrid")


def mine_bm25(corpus: dict[str, str], queries: dict[str, str], depth: int = 30) -> dict[str, list[str]]:
    """The BM25 top-``depth`` document ids of every query, best first: stage 1's own BM25 (English
    stopwords and stemmer), so the negatives are the look-alikes a user's BM25 recall would bring."""
    from winnow.evaluation.corpus_index import bm25_candidates

    search = bm25_candidates(corpus)
    return {
        qid: [doc_id for doc_id, _ in search(query, depth)]
        for qid, query in tqdm(queries.items(), desc="mining BM25", unit="query", leave=False)
    }


def mine_stage1(
    name: str, corpus: dict[str, str], queries: dict[str, str], depth: int = 30, mode: str = "hybrid"
) -> dict[str, list[str]]:
    """The top-``depth`` document ids of every query from Winnow's own stage 1 (``dense`` or ``hybrid``).

    The index is the evaluation harness's: built once per corpus under the cache dir, then reused.
    """
    from winnow.evaluation.corpus_index import index_stage1, open_index
    from winnow.models import DEFAULT_EMBEDDING_MODEL

    with open_index(name, corpus, DEFAULT_EMBEDDING_MODEL) as index:
        search = index_stage1(index, mode)
        return {q: [d for d, _ in search(q, text, depth)] for q, text in queries.items()}


def beir_groups(
    split: BeirSplit,
    source: str,
    depth: int = 30,
    queries: slice = slice(None),
    mining: str = "bm25",
    name: str = "",
) -> tuple[list[Group], LoadReport]:
    """Training groups from BEIR qrels: judged-relevant documents as positives, stage-1 hard negatives.

    ``mining`` is the stage 1 that finds them: ``bm25`` (``winnow.retrieve.bm25``), or Winnow's ``dense``
    or ``hybrid`` retrieval over an index of the corpus called ``name`` (see ``mine_stage1``).

    ``queries`` picks which of the queries with a positive are used, in file order (a train/dev split of
    one qrels file is ``slice(100, None)`` and ``slice(0, 100)``).

    Every judged document of a query (any grade) is excluded from its negatives, so a relevant document
    is never taught as irrelevant. Queries with no positive judgement (in the corpus) are skipped and counted.
    """
    report = LoadReport(source=source)
    qids = [q for q in split.queries if q in split.qrels]
    positive_ids = {q: [d for d, g in split.qrels[q].items() if g > 0 and d in split.corpus] for q in qids}
    report.skipped_no_positive = sum(1 for q in qids if not positive_ids[q])
    qids = [q for q in qids if positive_ids[q]][queries]
    if mining not in MINING_MODES:
        raise ValueError(f"mining must be one of {', '.join(MINING_MODES)}, not {mining!r}")
    wanted = {q: split.queries[q] for q in qids}
    if mining == "bm25":
        ranked = mine_bm25(split.corpus, wanted, depth=depth)
    else:
        ranked = mine_stage1(name or source, split.corpus, wanted, depth=depth, mode=mining)
    groups = []
    for qid in qids:
        judged = split.qrels[qid]
        negatives = tuple(split.corpus[d] for d in ranked[qid] if d not in judged)
        if not negatives:
            report.skipped_no_negative += 1
            continue
        positives = tuple(split.corpus[d] for d in positive_ids[qid])
        groups.append(Group(qid, split.queries[qid], positives, negatives))
    report.groups = len(groups)
    return groups, report
