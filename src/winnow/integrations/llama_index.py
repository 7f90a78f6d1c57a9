"""Winnow in LlamaIndex: ``WinnowRerank``, a node postprocessor that reranks retrieved nodes.

Use it as ``index.as_query_engine(node_postprocessors=[WinnowRerank(top_n=5)])`` or on its own with
``postprocess_nodes(nodes, query_str=...)``. Each returned node is a copy whose ``score`` is the
reranker's probability; its metadata keeps every field and adds ``winnow_score`` and
``winnow_probability``, which are excluded from the text the LLM and the embedder see.
"""

from __future__ import annotations

from typing import Any

from winnow.extras import require_extra
from winnow.integrations.scoring import PROBABILITY_KEY, SCORE_KEY, as_reranker, scored

with require_extra("llama-index-core", "llama-index"):
    from llama_index.core.bridge.pydantic import Field, PrivateAttr
    from llama_index.core.postprocessor.types import BaseNodePostprocessor
    from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle

__all__ = ["WinnowRerank"]

_ADDED = [SCORE_KEY, PROBABILITY_KEY]


class WinnowRerank(BaseNodePostprocessor):
    """Reranks nodes with a Winnow cross-encoder (a ``Reranker``, ``Cascade`` or model name)."""

    top_n: int = Field(default=5, gt=0, description="Nodes to keep.")
    _reranker: Any = PrivateAttr()

    def __init__(self, reranker: Any = None, top_n: int = 5, **kwargs: Any) -> None:
        super().__init__(top_n=top_n, **kwargs)
        self._reranker = as_reranker(reranker)

    @classmethod
    def class_name(cls) -> str:
        return "WinnowRerank"

    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        if query_bundle is None:
            raise ValueError("WinnowRerank needs the query: pass query_str= or query_bundle=")
        if not nodes:
            return []
        # EMBED mode: the text plus the metadata the index embeds (a title), as LlamaIndex's rerankers do.
        texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
        ranking = self._reranker.rerank(query_bundle.query_str, texts, top_k=self.top_n)
        out = []
        for result in ranking:
            node = nodes[result.index].node
            copy = node.model_copy(
                update={
                    "metadata": scored(node.metadata, result),
                    "excluded_llm_metadata_keys": [*node.excluded_llm_metadata_keys, *_ADDED],
                    "excluded_embed_metadata_keys": [*node.excluded_embed_metadata_keys, *_ADDED],
                }
            )
            out.append(NodeWithScore(node=copy, score=result.probability))
        return out
