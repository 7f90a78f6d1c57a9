"""Winnow in LangChain: a document compressor that reranks, and a retriever over a Winnow pipeline.

``WinnowReranker`` plugs into ``ContextualCompressionRetriever`` (or any chain) to rerank what another
retriever found; ``WinnowRetriever`` serves a Winnow ``Pipeline`` (its own index, or any
CandidateSource such as ``ChromaStore``) as a LangChain retriever. Metadata is kept; the reranker's
``winnow_score`` (logit), ``winnow_probability`` and LangChain's usual ``relevance_score`` are added.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from winnow.extras import require_extra
from winnow.integrations.scoring import PROBABILITY_KEY, SCORE_KEY, as_reranker, scored

with require_extra("langchain-core", "langchain"):
    from langchain_core.callbacks import (
        AsyncCallbackManagerForRetrieverRun,
        CallbackManagerForRetrieverRun,
        Callbacks,
    )
    from langchain_core.documents import BaseDocumentCompressor, Document
    from langchain_core.retrievers import BaseRetriever
    from pydantic import ConfigDict, Field, model_validator

__all__ = ["WinnowReranker", "WinnowRetriever"]


class WinnowReranker(BaseDocumentCompressor):
    """Reranks LangChain Documents with a Winnow cross-encoder and keeps the best ``top_n``.

    ``reranker`` is a ``winnow.rerank.Reranker`` / ``Cascade`` or a model name (default: Winnow's).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reranker: Any = None
    top_n: int | None = Field(default=5, gt=0)

    @model_validator(mode="after")
    def _load(self) -> WinnowReranker:
        self.reranker = as_reranker(self.reranker)
        return self

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """The best ``top_n`` documents, best first, each a copy with scores added to its metadata."""
        if not documents:
            return []
        ranking = self.reranker.rerank(query, list(documents), top_k=self.top_n)
        out = []
        for result in ranking:
            original = documents[result.index]
            metadata = scored(original.metadata, result)
            metadata["relevance_score"] = result.probability
            out.append(original.model_copy(update={"metadata": metadata}))
        return out


class WinnowRetriever(BaseRetriever):
    """A Winnow ``Pipeline`` as a LangChain retriever: stage-1 ``candidates``, reranked to ``top_k``.

    Each Document holds the chunk text; metadata has the source document's fields plus ``doc_id``,
    ``chunk_id``, ``title``, ``source``, ``span``, ``updated_at``, ``authority``, ``stage1_rank`` and
    the reranker's scores.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    pipeline: Any
    candidates: int = Field(default=50, gt=0)
    top_k: int = Field(default=5, gt=0)
    filters: dict[str, Any] | None = None

    def _documents(self, response: Any) -> list[Document]:
        return [
            Document(
                id=r.chunk_id,
                page_content=r.text,
                metadata={
                    **r.metadata,
                    "doc_id": r.doc_id,
                    "chunk_id": r.chunk_id,
                    "title": r.title,
                    "source": r.source,
                    "span": list(r.span) if r.span else None,
                    "updated_at": r.updated_at,
                    "authority": r.authority,
                    "stage1_rank": r.stage1_rank,
                    SCORE_KEY: r.score,
                    PROBABILITY_KEY: r.probability,
                },
            )
            for r in response
        ]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        response = self.pipeline.search(query, self.candidates, self.top_k, self.filters)
        return self._documents(response)

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[Document]:
        response = await self.pipeline.asearch(query, self.candidates, self.top_k, self.filters)
        return self._documents(response)
