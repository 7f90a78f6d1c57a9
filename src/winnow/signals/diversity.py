"""Diversity: maximal marginal relevance (MMR) over chunk embeddings, and a cap of chunks per document.

Why: five near-identical chunks waste a context window. MMR picks, at each step, the candidate that
maximises ``lam * score - (1 - lam) * max cosine to the ones already picked``; ``lam = 1`` is plain
score order. The per-document cap drops a document's chunks beyond the first ``max_per_doc`` picked.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True, slots=True)
class Pick:
    """One kept candidate: its input position, its MMR value when picked, and its redundancy
    (the highest cosine to an earlier pick; 0 for the first)."""

    index: int
    mmr: float
    redundancy: float


def check_diversity_settings(mmr_lambda: float | None, max_per_doc: int | None) -> None:
    if mmr_lambda is not None and not 0.0 <= mmr_lambda <= 1.0:
        raise ValueError(f"mmr_lambda must be in [0, 1] (1 = no diversity), got {mmr_lambda!r}")
    if max_per_doc is not None and (isinstance(max_per_doc, bool) or max_per_doc < 1):
        raise ValueError(f"max_chunks_per_doc must be a positive integer or None, got {max_per_doc!r}")


def diversify(
    scores: Sequence[float],
    embeddings: np.ndarray | None,
    mmr_lambda: float = 1.0,
    doc_ids: Sequence[str | None] | None = None,
    max_per_doc: int | None = None,
    k: int | None = None,
) -> list[Pick]:
    """Greedy MMR order of up to ``k`` candidates, honouring the per-document cap.

    ``embeddings`` are unit rows, one per score (only needed when ``mmr_lambda < 1``). Ties go to
    the earlier input position, so with ``mmr_lambda=1`` and no cap the order is the score order.
    """
    import numpy as np  # here, not at the top: `winnow --help` imports winnow.signals for its defaults

    n = len(scores)
    k = n if k is None else min(k, n)
    values = np.asarray(scores, dtype=np.float64)
    use_mmr = mmr_lambda < 1.0
    if use_mmr:
        if embeddings is None or len(embeddings) != n:
            raise ValueError("MMR needs one embedding per candidate")
        vectors = np.asarray(embeddings, dtype=np.float64)
        similarity = vectors @ vectors.T
    redundancy = np.zeros(n)
    available = np.ones(n, dtype=bool)
    per_doc: dict[str, int] = {}
    picks: list[Pick] = []
    while len(picks) < k and available.any():
        mmr = mmr_lambda * values - (1.0 - mmr_lambda) * redundancy if use_mmr else values.copy()
        mmr[~available] = -np.inf
        best = int(np.argmax(mmr))
        available[best] = False
        doc = None if doc_ids is None else doc_ids[best]
        if max_per_doc is not None and doc is not None:
            if per_doc.get(doc, 0) >= max_per_doc:
                continue
            per_doc[doc] = per_doc.get(doc, 0) + 1
        picks.append(Pick(best, float(mmr[best]), float(redundancy[best])))
        if use_mmr:
            redundancy = np.maximum(redundancy, similarity[best])
    return picks
