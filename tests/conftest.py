"""Shared fixtures: a small real cross-encoder built from all-MiniLM-L6-v2, and the shared data sets."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``bf16`` on CPUs without bf16 units (AVX2-only machines): everything else runs."""
    from winnow.models.hardware import cpu_has_fast_bf16, cpu_name

    if cpu_has_fast_bf16():
        return
    skip = pytest.mark.skip(reason=f"needs a CPU with bf16 units (AMX or AVX-512 BF16); this is {cpu_name()}")
    for item in items:
        if "bf16" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets beside the repository (../shared/data)."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data sets are missing: expected them at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cross-encoder with all-MiniLM-L6-v2's encoder and a fresh, seeded one-logit head.

    Its scores mean nothing yet (the head is untrained), but it is a real BERT cross-encoder of the
    production size, so every mechanical property (batching, truncation, backends) is tested for real.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from winnow.models import resolve_model

    source = resolve_model("all-minilm-l6")
    target = tmp_path_factory.mktemp("minilm-cross-encoder")
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
    with torch.no_grad():
        # A head with a large enough weight that scores spread out and rankings are well defined.
        model.classifier.weight.normal_(0.0, 0.5)
    model.save_pretrained(target)
    AutoTokenizer.from_pretrained(source).save_pretrained(target)
    return target
