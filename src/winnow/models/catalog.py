"""What each short model name is: its job, size, licence and quality, and whether it is on this machine.

Quality is TREC DL 2019 nDCG@10 reranking BM25's top 100 where there is a figure, with where it comes
from: "published" (the model's authors, sbert.net's MS MARCO cross-encoder table) or "measured here"
(Winnow's benchmarks). Sizes are
the weights a download fetches (fp32 unless noted); parameter counts are the model's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from winnow.models.registry import KNOWN_MODELS

SBERT_TABLE = "published (sbert.net)"
NO_FIGURE = "none published: winnow eval"


@dataclass(frozen=True)
class ModelCard:
    name: str
    purpose: str
    parameters: str
    size_mb: int
    licence: str
    dl19_ndcg10: float | None  # TREC DL 2019 nDCG@10 reranking BM25's top 100; None: no figure
    source: str  # where that figure comes from


CATALOG: dict[str, ModelCard] = {
    card.name: card
    for card in (
        ModelCard(
            "winnow-minilm-l6",
            "reranker, default (bundled, fp16)",
            "22.7M",
            45,
            "Apache-2.0",
            0.649,
            "measured here (docs/reranker-quality.md)",
        ),
        ModelCard(
            "minilm-l6",
            "reranker",
            "22.7M",
            91,
            "Apache-2.0",
            0.743,
            SBERT_TABLE,
        ),
        ModelCard(
            "minilm-l12",
            "reranker",
            "33.4M",
            134,
            "Apache-2.0",
            0.743,
            SBERT_TABLE,
        ),
        ModelCard(
            "minilm-l4",
            "reranker",
            "19.2M",
            77,
            "Apache-2.0",
            0.730,
            SBERT_TABLE,
        ),
        ModelCard(
            "minilm-l2",
            "reranker",
            "15.6M",
            63,
            "Apache-2.0",
            0.710,
            SBERT_TABLE,
        ),
        ModelCard(
            "tinybert-l2",
            "reranker",
            "4.4M",
            18,
            "Apache-2.0",
            0.698,
            SBERT_TABLE,
        ),
        ModelCard(
            "electra-base",
            "reranker",
            "109M",
            438,
            "Apache-2.0",
            0.720,
            SBERT_TABLE,
        ),
        ModelCard(
            "bge-reranker-base",
            "reranker, en + zh",
            "278M",
            1112,
            "MIT",
            None,
            NO_FIGURE,
        ),
        ModelCard(
            "bge-reranker-v2-m3",
            "reranker, multilingual",
            "568M",
            2271,
            "Apache-2.0",
            None,
            NO_FIGURE,
        ),
        ModelCard(
            "mxbai-rerank-xsmall",
            "reranker",
            "70.8M",
            284,
            "Apache-2.0",
            None,
            NO_FIGURE,
        ),
        ModelCard(
            "all-minilm-l6",
            "embeddings (stage 1)",
            "22.7M",
            91,
            "Apache-2.0",
            0.643,
            "measured here, as a reranker (evaluation/scorers.py)",
        ),
    )
}


def model_location(name: str) -> str | None:
    """The folder holding the model on this machine, or None; never downloads."""
    from winnow.errors import ModelNotFoundError
    from winnow.models.registry import resolve_model

    try:
        return str(resolve_model(name, download=False))
    except ModelNotFoundError:
        return None


def catalog_rows() -> list[dict]:
    """Every short name with its card, its Hugging Face id (or where it ships) and where it is here."""
    rows = []
    for name, target in KNOWN_MODELS.items():
        if "/" in name:  # an alias spelled as a hub id
            continue
        card = CATALOG[name]
        rows.append({**asdict(card), "id": target, "location": model_location(name)})
    return rows
