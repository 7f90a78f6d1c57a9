"""A cascade: a small, fast cross-encoder prunes the candidates and the full one reranks what is left.

Reranking 100 candidates with a 6-layer model costs 100 full forward passes; a 2-layer model scores them
at about a third of the cost, and the full model then reads only the ``keep`` best. Quality holds only
when the small model's top ``keep`` contains the full model's top 10 (measured in docs/cascade.md).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from winnow.rerank.inputs import check_top_k
from winnow.rerank.results import Ranking

if TYPE_CHECKING:
    import numpy as np

    from winnow.rerank.reranker import Reranker

DEFAULT_CASCADE_KEEP = 30


class Cascade:
    """Two rerankers in a row, used like one ``Reranker``.

    >>> cascade = Cascade("minilm-l2", "winnow-minilm-l6", keep=30)
    >>> ranking = cascade.rerank("what is bm25?", ["BM25 is a ranking function.", "Paris is in France."])
    >>> ranking[0].index
    0

    ``first`` scores every document; the best ``keep`` go to ``second``, whose scores and probabilities
    the results carry. Documents the first model pruned are not returned, so a ranking holds at most
    ``keep`` results (fewer with ``top_k``). With ``keep`` or fewer documents the first model is skipped.
    Either model is a ``Reranker`` or anything ``Reranker(model=...)`` accepts.
    """

    def __init__(
        self,
        first: Reranker | str | os.PathLike[str],
        second: Reranker | str | os.PathLike[str],
        *,
        keep: int = DEFAULT_CASCADE_KEEP,
        **reranker_options: Any,
    ) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a positive integer, not {keep!r}")
        from winnow.rerank.reranker import Reranker  # imports torch: only when a cascade is built

        self.first = first if isinstance(first, Reranker) else Reranker(first, **reranker_options)
        self.second = second if isinstance(second, Reranker) else Reranker(second, **reranker_options)
        self.keep = keep

    @property
    def tokenizer(self):
        """The final model's tokenizer (what context budgets are counted in)."""
        return self.second.tokenizer

    @property
    def max_length(self) -> int:
        return self.second.max_length

    @property
    def model_name(self) -> str:
        return f"{self.first.model_name} > {self.second.model_name}"

    def __repr__(self) -> str:
        return f"Cascade(first={self.first!r}, second={self.second!r}, keep={self.keep})"

    def rerank(self, query: str, documents: Sequence[Any], top_k: int | None = None) -> Ranking:
        """Rank ``documents`` by the second model after the first has pruned them to ``keep``."""
        check_top_k(top_k)
        if isinstance(documents, Sequence) and len(documents) <= self.keep:
            return self.second.rerank(query, documents, top_k=top_k)
        pruned = self.first.rerank(query, documents, top_k=self.keep)
        survivors = [result.index for result in pruned]
        final = self.second.rerank(query, [documents[i] for i in survivors], top_k=top_k)
        results = [replace(result, index=survivors[result.index]) for result in final]
        return Ranking(
            results=results,
            truncated=final.truncated,
            cache_hits=pruned.cache_hits + final.cache_hits,
            model=self.model_name,
        )

    async def arerank(self, query: str, documents: Sequence[Any], top_k: int | None = None) -> Ranking:
        """``rerank`` in a worker thread, so an event loop keeps serving while the models run."""
        import asyncio  # already loaded while a coroutine runs; at the top it cost `winnow --help` 40 ms

        return await asyncio.to_thread(self.rerank, query, documents, top_k)

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """Raw scores of (query, document) pairs by the second (full) model; nothing is pruned."""
        return self.second.score(pairs)
