"""Hard-negative mining: passages that stage 1 ranks high for a query but that are not known positives.

Random negatives are too easy to teach a reranker anything; the passages BM25 confuses with the answer
are exactly the ones stage 2 must learn to push down.
"""

from __future__ import annotations

import bm25s
import Stemmer

from winnow.training.data import BeirSplit, Group, LoadReport


def mine_bm25(corpus: dict[str, str], queries: dict[str, str], depth: int = 30) -> dict[str, list[str]]:
    """The BM25 top-``depth`` document ids of every query, best first."""
    doc_ids = list(corpus)
    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize([corpus[d] for d in doc_ids], stemmer=stemmer, show_progress=False),
        show_progress=False,
    )
    qids = list(queries)
    tokens = bm25s.tokenize([queries[q] for q in qids], stemmer=stemmer, show_progress=False)
    hits, _ = retriever.retrieve(tokens, k=min(depth, len(doc_ids)), show_progress=True, leave_progress=False)
    return {qid: [doc_ids[i] for i in row] for qid, row in zip(qids, hits.tolist(), strict=True)}


def beir_groups(
    split: BeirSplit, source: str, depth: int = 30, max_queries: int | None = None
) -> tuple[list[Group], LoadReport]:
    """Training groups from BEIR qrels: judged-relevant documents as positives, BM25 hard negatives.

    Every judged document of a query (any grade) is excluded from its negatives, so a relevant document
    is never taught as irrelevant. Queries with no positive judgement (in the corpus) are skipped and counted.
    """
    report = LoadReport(source=source)
    qids = [q for q in split.queries if q in split.qrels]
    positive_ids = {q: [d for d, g in split.qrels[q].items() if g > 0 and d in split.corpus] for q in qids}
    report.skipped_no_positive = sum(1 for q in qids if not positive_ids[q])
    qids = [q for q in qids if positive_ids[q]][:max_queries]
    ranked = mine_bm25(split.corpus, {q: split.queries[q] for q in qids}, depth=depth)
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
