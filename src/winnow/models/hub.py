"""Fetch a Hugging Face model on first use, the way sentence-transformers users expect, but never
when the machine is told to stay offline.

The environment is read at call time, not at import: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) forbids
any network call, HF_ENDPOINT points at a mirror, HF_HUB_CACHE / HF_HOME move the cache. Only the files
a cross-encoder needs are fetched (configs, tokenizer, one copy of the weights), not the ONNX, OpenVINO,
TensorFlow or Flax copies many model repositories also carry.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from winnow.errors import ModelNotFoundError

DEFAULT_ENDPOINT = "https://huggingface.co"
# Top-level files only (IGNORE_SUBFOLDERS); safetensors weights when the repository has them.
MODEL_FILES = ["*.json", "*.txt", "*.model", "*.safetensors"]
LEGACY_WEIGHTS = ["pytorch_model.bin"]
IGNORE_SUBFOLDERS = ["*/*"]


def _is_true(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """Whether HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) forbids network calls, read now."""
    return _is_true(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_cache_dir() -> Path:
    """The Hugging Face cache, with huggingface_hub's precedence: HF_HUB_CACHE, then HF_HOME/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    home = os.environ.get("HF_HOME") or os.path.join(xdg, "huggingface")
    return Path(home).expanduser() / "hub"


def how_to_provide(model_id: str, revision: str | None) -> str:
    """The sentence every 'not here' message ends with."""
    at = f" --revision {revision}" if revision else ""
    return (
        f"Download it once where there is network (`hf download {model_id}{at}`, or run Winnow there "
        "without HF_HUB_OFFLINE) and copy the Hugging Face cache here, or pass the model's local directory."
    )


def cached_snapshot(model_id: str, revision: str | None = None) -> Path | None:
    """The model's folder in the local cache, if it is complete there; never touches the network."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    try:
        folder = snapshot_download(
            model_id,
            revision=revision,
            cache_dir=hub_cache_dir(),
            local_files_only=True,
            allow_patterns=MODEL_FILES,
            ignore_patterns=IGNORE_SUBFOLDERS,
        )
    except Exception:
        return None
    path = Path(folder)
    return path if (path / "config.json").is_file() else None


def download_model(model_id: str, revision: str | None = None) -> Path:
    """Download ``model_id`` at ``revision`` (branch, tag or commit; default main) into the cache.

    Says what it fetches and from where on stderr, with huggingface_hub's progress bars (bytes, totals,
    rate) unless HF_HUB_DISABLE_PROGRESS_BARS is set. Raises ``ModelNotFoundError`` with one line that says
    what went wrong (offline, no such repository or revision, hub unreachable) and how to get the model.
    """
    if hub_offline():
        raise ModelNotFoundError(
            f"model {model_id!r} is not on this machine and HF_HUB_OFFLINE is set, so Winnow does not "
            "download it. Unset HF_HUB_OFFLINE to let Winnow fetch it, or: "
            + how_to_provide(model_id, revision)
        )
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import (
            GatedRepoError,
            HfHubHTTPError,
            LocalEntryNotFoundError,
            RepositoryNotFoundError,
            RevisionNotFoundError,
        )
    except ImportError as exc:  # a dependency of Winnow; missing only in a broken install
        raise ModelNotFoundError(
            f"model {model_id!r} is not on this machine and huggingface_hub is not installed to fetch it "
            "(`pip install huggingface-hub`)"
        ) from exc
    endpoint = hub_endpoint()
    cache_dir = hub_cache_dir()
    where = f"{model_id}" + (f" (revision {revision})" if revision else "")
    print(f"Downloading {where} from {endpoint} into {cache_dir} (first use only)", file=sys.stderr)
    options = {
        "revision": revision,
        "cache_dir": cache_dir,
        "endpoint": endpoint,
        "ignore_patterns": IGNORE_SUBFOLDERS,
    }
    try:
        folder = Path(snapshot_download(model_id, allow_patterns=MODEL_FILES, **options))
        if not any(folder.glob("*.safetensors")):
            folder = Path(snapshot_download(model_id, allow_patterns=LEGACY_WEIGHTS, **options))
    except RevisionNotFoundError:
        raise ModelNotFoundError(f"{model_id} has no revision {revision!r} on {endpoint}") from None
    except GatedRepoError:
        raise ModelNotFoundError(
            f"{model_id} on {endpoint} is gated: accept its terms on the hub and set HF_TOKEN"
        ) from None
    except RepositoryNotFoundError:
        raise ModelNotFoundError(
            f"no model {model_id!r} on {endpoint} (check the name; a private model needs HF_TOKEN)"
        ) from None
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        cause = exc.__cause__ or exc  # the hub wraps the connection error it met
        reason = " ".join(str(cause).split())[:200]
        raise ModelNotFoundError(
            f"could not download {where} from {endpoint} ({type(cause).__name__}: {reason}). "
            f"{how_to_provide(model_id, revision)}"
        ) from None
    except Exception as exc:  # httpx connection errors and timeouts differ between hub versions
        if type(exc).__module__.split(".")[0] not in ("httpx", "httpx2", "httpcore"):
            raise
        raise ModelNotFoundError(
            f"could not reach {endpoint} to download {where} ({type(exc).__name__}). "
            f"{how_to_provide(model_id, revision)}"
        ) from None
    if not (folder / "config.json").is_file():
        raise ModelNotFoundError(f"{model_id} on {endpoint} has no config.json, so it is not a model")
    return folder
