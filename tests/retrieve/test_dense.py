"""The embedder: ONNX query path vs torch batch path, token-budget batches, the cached query export."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from winnow.retrieve import dense
from winnow.retrieve.dense import Embedder
from winnow.retrieve.ingest import load_beir_corpus


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A private WINNOW_CACHE_DIR, so the query model is exported here once for this module."""
    folder = tmp_path_factory.mktemp("embedder-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WINNOW_CACHE_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def embedder(cache_dir: Path) -> Embedder:
    return Embedder(device="cpu")


@pytest.fixture(scope="module")
def scifact_texts(shared_data: Path) -> list[str]:
    docs = itertools.islice(load_beir_corpus(shared_data / "beir" / "scifact"), 40)
    return [f"{d.title} {d.text}" for d in docs]


@pytest.fixture(scope="module")
def scifact_queries(shared_data: Path) -> list[str]:
    with (shared_data / "beir" / "scifact" / "queries.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line)["text"] for line in itertools.islice(handle, 64)]


@pytest.fixture(scope="module")
def fp32_reference(embedder: Embedder):
    """sentence-transformers in fp32, the reference both of Winnow's paths must match."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(embedder.model_dir), device="cpu")
    model.max_seq_length = embedder.max_length
    return lambda texts: model.encode(texts, batch_size=32, normalize_embeddings=True)


def test_query_path_agrees_with_batch_path_and_fp32(
    embedder: Embedder, scifact_queries: list[str], fp32_reference
) -> None:
    queries = np.stack([embedder.encode_query(q) for q in scifact_queries])
    assert queries.dtype == np.float32 and queries.shape == (len(scifact_queries), embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(queries, axis=1), 1.0, atol=1e-5)
    batched = embedder.encode(scifact_queries)
    assert np.min(np.sum(queries * batched, axis=1)) > 0.999
    assert np.min(np.sum(queries * fp32_reference(scifact_queries), axis=1)) > 0.999


def test_token_budget_batches_keep_input_order_and_match_fp32(
    embedder: Embedder, scifact_texts: list[str], fp32_reference
) -> None:
    small = Embedder(embedder.model_dir, device="cpu", dtype=embedder.dtype, batch_tokens=1024)
    sizes = [len(positions) for positions, _ in small.encode_batches(scifact_texts)]
    vectors = small.encode(scifact_texts)
    assert sum(sizes) == len(scifact_texts) and len(sizes) > 5  # 40 texts of up to 256 tokens: many batches
    cosines = np.sum(vectors * fp32_reference(scifact_texts), axis=1)
    assert cosines.min() > 0.999, cosines.argmin()  # per text, so a row written to the wrong place fails


def test_query_export_is_cached_and_reused(
    embedder: Embedder, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vector = embedder.encode_query("vitamin D deficiency and bone density")
    assert list(cache_dir.glob("onnx/*/embedder-mean.onnx"))

    def no_export(*args: object) -> None:
        raise AssertionError("the cached export should have been reused")

    monkeypatch.setattr(dense, "export_embedder", no_export)
    again = Embedder(embedder.model_dir, device="cpu").encode_query("vitamin D deficiency and bone density")
    np.testing.assert_array_equal(vector, again)


def test_shared_embedder_is_one_instance_however_it_is_called() -> None:
    assert dense.shared_embedder("all-minilm-l6") is dense.shared_embedder("all-minilm-l6", None, None)
