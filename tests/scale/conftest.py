"""One local Ray for the whole folder (``ray.init(num_cpus=2)``, shut down at the end), a small real
corpus (SciFact abstracts), and the service fixtures of tests/serve."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve.conftest import sample_index_dir, served_reranker  # noqa: F401  (fixtures used here too)

from scale.faults import kill_first_encoder

ABSTRACTS = 30


@pytest.fixture(scope="session")
def kill_flag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Creating this file kills the next embedding actor that gets a batch (see scale/faults.py)."""
    return tmp_path_factory.mktemp("faults") / "kill-embedder"


@pytest.fixture(scope="session")
def ray_address(kill_flag: Path) -> Iterator[str]:
    """A Ray started for these tests, with 2 CPUs; yields the address other processes join it at."""
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        runtime_env={"worker_process_setup_hook": kill_first_encoder(kill_flag)},
    )
    yield ray.get_runtime_context().gcs_address
    from ray import serve

    serve.shutdown()
    ray.shutdown()


@pytest.fixture(scope="session")
def scifact_corpus(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with one .jsonl file of the first SciFact abstracts (a copy: the shared data is read-only)."""
    folder = tmp_path_factory.mktemp("scifact")
    lines = (shared_data / "beir" / "scifact" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    (folder / "abstracts.jsonl").write_text("\n".join(lines[:ABSTRACTS]) + "\n", encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def scifact_queries(shared_data: Path) -> list[str]:
    rows = (shared_data / "beir" / "scifact" / "queries.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(row)["text"] for row in rows[:5]]
