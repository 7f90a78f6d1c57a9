"""A model's tokenizer through the `tokenizers` library alone, so answering a query needs no transformers.

Loading ``transformers`` costs 1-4 s of a command's start-up (docs/benchmarks.md), while the tokenizer
a query needs is a Rust object from the `tokenizers` library underneath it. The first time a model is
used, transformers' ``AutoTokenizer`` builds that object exactly as it would for sentence-transformers
(it may rebuild a tokenizer from its config rather than read tokenizer.json as it is) and the result is
cached beside the model's ONNX exports; every later process loads the cached file in milliseconds. The
calls mirror what transformers does for pairs, truncation and overflowing windows, so the token ids are
identical (tests/models/test_tokenizer.py compares them on real texts).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from functools import cache
from importlib import metadata
from pathlib import Path

from tokenizers import Encoding
from tokenizers import Tokenizer as RustTokenizer

from winnow.models.onnx_export import atomic_write, export_folder

# Bump when what is cached changes.
CACHE_VERSION = 1


class Tokenizer:
    """Token ids for single texts and (query, document) pairs, with what the model needs to pad them.

    ``backend_tokenizer`` is the underlying ``tokenizers.Tokenizer`` (as on a transformers fast tokenizer).
    """

    def __init__(
        self,
        backend_tokenizer: RustTokenizer,
        *,
        pad_token_id: int,
        model_max_length: int,
        truncation_side: str = "right",
        token_types: bool = True,
    ) -> None:
        self.backend_tokenizer = backend_tokenizer
        self.pad_token_id = pad_token_id
        self.model_max_length = model_max_length
        self.truncation_side = truncation_side
        # Whether the model takes segment ids (BERT does; RoBERTa-style models do not).
        self.token_types = token_types
        # Truncation is a setting of the shared Rust object: one call at a time sets and uses it.
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        """Picklable (Ray sends a replica's tokenizer to its ingress): everything but the lock."""
        return {key: value for key, value in self.__dict__.items() if key != "_lock"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @classmethod
    def from_model(cls, model_dir: Path) -> Tokenizer:
        """The model's tokenizer, converted once through transformers and then read from the cache."""
        model_dir = Path(model_dir).resolve()
        return _load(model_dir, _cache_file(model_dir))

    def count(self, text: str) -> int:
        """Tokens in ``text`` without special tokens and without any truncation."""
        return len(self._encode([text], special=False)[0].ids)

    def encode(self, texts: Sequence[str], max_length: int) -> list[Encoding]:
        """Each text with the model's special tokens, cut to ``max_length`` tokens (as transformers'
        ``truncation=True`` does)."""
        return self._encode(list(texts), max_length=max_length, strategy="longest_first")

    def encode_pairs(
        self, queries: Sequence[str], texts: Sequence[str], max_length: int, stride: int = 0
    ) -> list[list[Encoding]]:
        """Per (query, text) pair its windows of at most ``max_length`` tokens: the first, then those that
        overflow (each overlapping the one before by ``stride`` tokens). Only the text is ever cut."""
        encodings = self._encode(
            list(zip(queries, texts, strict=True)),
            max_length=max_length,
            strategy="only_second",
            stride=stride,
        )
        return [[encoding, *encoding.overflowing] for encoding in encodings]

    def offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """Character span of every token of each text (no special tokens, no truncation)."""
        return [encoding.offsets for encoding in self._encode(list(texts), special=False)]

    def num_special_tokens(self, pair: bool) -> int:
        """How many special tokens the model adds to one text (``pair=False``) or a pair."""
        return self.backend_tokenizer.num_special_tokens_to_add(pair)

    def _encode(
        self,
        inputs: list,
        *,
        special: bool = True,
        max_length: int | None = None,
        strategy: str = "longest_first",
        stride: int = 0,
    ) -> list[Encoding]:
        with self._lock:
            backend = self.backend_tokenizer
            if max_length is None:
                backend.no_truncation()
            else:
                backend.enable_truncation(
                    max_length, stride=stride, strategy=strategy, direction=self.truncation_side
                )
            return backend.encode_batch(inputs, add_special_tokens=special)


def _cache_file(model_dir: Path) -> Path:
    # The transformers version is part of the name: a new one may build the tokenizer differently.
    version = metadata.version("transformers")
    return export_folder(model_dir) / f"tokenizer-v{CACHE_VERSION}-transformers-{version}.json"


@cache
def _load(model_dir: Path, path: Path) -> Tokenizer:
    """One Tokenizer per cache file (its name changes with the model's content) and process."""
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        backend = RustTokenizer.from_str(saved["tokenizer"])
    except Exception:  # missing or damaged (tokenizers raises a bare Exception): convert again
        _convert(model_dir, path)
        saved = json.loads(path.read_text(encoding="utf-8"))
        backend = RustTokenizer.from_str(saved["tokenizer"])
    backend.no_padding()  # padding is ours (pad_batch); a tokenizer file may carry a fixed length
    return Tokenizer(
        backend,
        pad_token_id=saved["pad_token_id"],
        model_max_length=saved["model_max_length"],
        truncation_side=saved["truncation_side"],
        token_types=saved["token_types"],
    )


def _convert(model_dir: Path, target: Path) -> None:
    """Build the tokenizer with transformers (as sentence-transformers would) and save what we use of it."""
    from transformers import AutoTokenizer

    import winnow.models.gated_config  # noqa: F401  (registers Winnow's config: the tokenizer reads it)

    loaded = AutoTokenizer.from_pretrained(model_dir)
    backend = getattr(loaded, "backend_tokenizer", None)
    if backend is None:
        raise ValueError(
            f"{model_dir} has no fast tokenizer (a tokenizer.json, or one transformers converts)"
        )
    limit = getattr(loaded, "model_max_length", None)
    saved = {
        "tokenizer": backend.to_str(),
        "pad_token_id": loaded.pad_token_id if loaded.pad_token_id is not None else 0,
        # transformers says "no limit" with a huge number; a JSON integer keeps it exact.
        "model_max_length": int(limit) if isinstance(limit, int | float) and limit < 1e12 else 10**12,
        "truncation_side": loaded.truncation_side,
        "token_types": "token_type_ids" in loaded.model_input_names,
    }
    atomic_write(target, lambda path: path.write_text(json.dumps(saved), encoding="utf-8"))
