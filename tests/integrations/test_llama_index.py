"""WinnowRerank as a real llama-index-core node postprocessor."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import MetadataMode, NodeWithScore, QueryBundle, TextNode
from readme_examples import run_readme_example

from winnow.integrations.llama_index import WinnowRerank
from winnow.rerank import Reranker

TEXTS = [
    "Python's GIL allows one thread to run bytecode at a time.",
    "QUIC runs over UDP and migrates connections between networks.",
    "A B-tree keeps keys sorted in balanced pages.",
]


def test_postprocessor_reranks_nodes_and_keeps_metadata(minilm_cross_encoder: Path) -> None:
    reranker = Reranker(minilm_cross_encoder)
    nodes = [
        NodeWithScore(node=TextNode(text=t, id_=f"n{i}", metadata={"page": i}), score=0.1 * i)
        for i, t in enumerate(TEXTS)
    ]
    postprocessor = WinnowRerank(reranker=reranker, top_n=2)
    assert isinstance(postprocessor, BaseNodePostprocessor)
    kept = postprocessor.postprocess_nodes(nodes, query_bundle=QueryBundle("python threads in parallel"))
    texts = [n.node.get_content(metadata_mode=MetadataMode.EMBED) for n in nodes]
    expected = reranker.rerank("python threads in parallel", texts, top_k=2)
    assert [n.node.node_id for n in kept] == [f"n{r.index}" for r in expected]
    for node, result in zip(kept, expected, strict=True):
        assert node.score == result.probability
        assert node.node.metadata["page"] == result.index
        assert node.node.metadata["winnow_score"] == pytest.approx(result.score)
        # Winnow's fields do not leak into what the LLM reads.
        assert "winnow" not in node.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "winnow_score" not in nodes[0].node.metadata  # the caller's nodes are unchanged
    assert postprocessor.postprocess_nodes([], query_str="anything") == []
    with pytest.raises(ValueError, match="needs the query"):
        postprocessor.postprocess_nodes(nodes)
    assert WinnowRerank.class_name() == "WinnowRerank"


def test_readme_llama_index_example(tmp_path: Path) -> None:
    lines = run_readme_example("llama-index", tmp_path)
    assert len(lines) == 1 and lines[0].startswith("3 ")
