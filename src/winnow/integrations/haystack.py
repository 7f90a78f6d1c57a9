"""Winnow in Haystack 2: ``WinnowRanker``, a pipeline component that reranks Documents.

Put it after any retriever: ``pipeline.add_component("ranker", WinnowRanker(top_k=5))`` and connect
``retriever.documents`` to ``ranker.documents``. Each returned Document is a copy whose ``score`` is
the reranker's probability; ``meta`` keeps every field and adds ``winnow_score`` and ``winnow_probability``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from winnow.extras import require_extra
from winnow.integrations.scoring import as_reranker, scored
from winnow.rerank.inputs import check_query

with require_extra("haystack-ai", "haystack"):
    from haystack import Document, component, default_to_dict

__all__ = ["WinnowRanker"]


@component
class WinnowRanker:
    """Reranks Documents by relevance to the query with a Winnow cross-encoder; keeps the best ``top_k``.

    ``model`` is a Winnow model name or path (default: Winnow's reranker); pass ``reranker=`` to share a
    loaded ``Reranker`` or ``Cascade`` instead. The model loads in ``warm_up`` (or on first run).
    """

    def __init__(self, model: str | None = None, top_k: int = 10, reranker: Any = None) -> None:
        if not isinstance(top_k, int) or top_k <= 0:
            raise ValueError(f"top_k must be a positive integer, not {top_k!r}")
        self.model = model
        self.top_k = top_k
        self._reranker = reranker

    def to_dict(self) -> dict[str, Any]:
        return default_to_dict(self, model=self.model, top_k=self.top_k)

    def warm_up(self) -> None:
        if self._reranker is None or isinstance(self._reranker, str):
            self._reranker = as_reranker(self.model)

    @component.output_types(documents=list[Document])
    def run(
        self, query: str, documents: list[Document], top_k: int | None = None
    ) -> dict[str, list[Document]]:
        """The best ``top_k`` documents (default: the component's), best first, with scores added."""
        check_query(query)
        if not documents:
            return {"documents": []}
        self.warm_up()
        # A Haystack Document may hold no text (a table, an image): it ranks as empty instead of failing.
        texts = [d.content or "" for d in documents]
        ranking = self._reranker.rerank(query, texts, top_k=top_k or self.top_k)
        return {
            "documents": [
                dataclasses.replace(
                    documents[r.index], score=r.probability, meta=scored(documents[r.index].meta, r)
                )
                for r in ranking
            ]
        }
