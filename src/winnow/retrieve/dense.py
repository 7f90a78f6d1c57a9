"""Sentence embeddings for dense recall: any sentence-transformers model, run with plain transformers.

Why not ``SentenceTransformer.encode``: documents are embedded with bf16 matrix multiplies on CPUs that
do them in hardware (fused with bias and GELU, the rest in fp32: about 2x faster here, cosine to fp32
0.99998), in batches of similar length grouped by a token
budget, so padding is minimal and the attention tensors stay small, with a progress bar that counts
texts. A single query is a different job: tiny matrices, where per-operator overheads dominate. On a CPU
it runs through ONNX Runtime in fp32 (exported once, cached beside the reranker's exports), which
measured faster than torch in either bf16 or fp32. Pooling (mean or CLS) follows the model's own
``1_Pooling/config.json`` and is part of the model, so both paths pool alike; vectors are always
L2-normalised so the dot product is the cosine.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cache, cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from winnow.models import DEFAULT_EMBEDDING_MODEL, pick_device, pick_dtype, resolve_model
from winnow.models.batching import pad_batch, token_budget_batches
from winnow.models.fused_linear import fuse_linear_layers, runs_fused
from winnow.models.hardware import DTYPES
from winnow.models.onnx_export import export_folder, export_module, onnx_session
from winnow.models.quiet import quiet_loading

if TYPE_CHECKING:
    import onnxruntime


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


class PooledEncoder(torch.nn.Module):
    """The transformer plus pooling and L2 normalisation: token ids in, unit vectors out.

    Torch runs this module for document batches and ONNX Runtime runs its export for queries.
    """

    def __init__(self, encoder: torch.nn.Module, pooling: str):
        super().__init__()
        self.encoder = encoder
        self.pooling = pooling

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:  # only for models whose tokenizer makes them
            inputs["token_type_ids"] = token_type_ids
        hidden = self.encoder(**inputs).last_hidden_state.float()
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=-1)


def export_embedder(model_dir: Path, pooling: str, input_names: list[str], target: Path) -> None:
    """Export the fp32 model with its pooling to ONNX.

    The export uses a model instance of its own: tracing leaves the traced instance unfit for later use.
    """
    from transformers import AutoModel

    with quiet_loading():
        encoder = AutoModel.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager")
    export_module(PooledEncoder(encoder, pooling).eval(), input_names, "embedding", encoder.config, target)


class Embedder:
    """Encode texts to unit vectors with a bi-encoder (default all-MiniLM-L6-v2, shipped offline).

    Nothing heavy loads up front: the torch model on the first ``encode``, the ONNX query model on the
    first ``encode_query`` (a CPU process that only answers queries never loads the torch model).
    """

    def __init__(
        self,
        model: str | Path = DEFAULT_EMBEDDING_MODEL,
        device: str | None = None,
        dtype: str | None = None,
        batch_tokens: int = 4096,
        max_length: int | None = None,
    ):
        from transformers import AutoTokenizer

        self.model_dir = resolve_model(model)
        self.device = pick_device(device)
        self.dtype = pick_dtype(self.device, dtype)
        self.batch_tokens = batch_tokens
        st_config = _read_json(self.model_dir / "sentence_bert_config.json")
        self.max_length = max_length or int(st_config.get("max_seq_length", 512))
        pooling = _read_json(self.model_dir / "1_Pooling" / "config.json")
        self.pooling = "cls" if pooling.get("pooling_mode_cls_token") else "mean"
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        self.dim = int(_read_json(self.model_dir / "config.json")["hidden_size"])
        # token_type_ids only where the tokenizer makes them (BERT does; RoBERTa-style models do not).
        self.input_names = ["input_ids", "attention_mask"]
        if "token_type_ids" in self.tokenizer.model_input_names:
            self.input_names.append("token_type_ids")

    @cached_property
    def model(self) -> PooledEncoder:
        """The torch model in ``dtype`` on ``device``, for document batches.

        bf16 on a CPU: fp32 with fused bf16 linear layers (``winnow.models.fused_linear``).
        """
        from transformers import AutoModel

        fused = runs_fused(self.device, self.dtype)
        with quiet_loading():
            encoder = AutoModel.from_pretrained(
                self.model_dir, dtype=torch.float32 if fused else DTYPES[self.dtype]
            )
        if fused:
            fuse_linear_layers(encoder)
        return PooledEncoder(encoder, self.pooling).to(self.device).eval()

    @cached_property
    def query_session(self) -> onnxruntime.InferenceSession:
        """ONNX Runtime session of the fp32 export (exported on first use, then read from the cache)."""
        path = export_folder(self.model_dir) / f"embedder-{self.pooling}.onnx"
        if not path.is_file():
            export_embedder(self.model_dir, self.pooling, self.input_names, path)
        return onnx_session(path)

    @torch.inference_mode()
    def _forward(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        inputs = {name: torch.from_numpy(batch[name]).to(self.device) for name in self.input_names}
        return self.model(**inputs).cpu().numpy()

    def encode(self, texts: list[str], progress: bool = False) -> np.ndarray:
        """Unit vectors (float32, shape (len(texts), dim)) in input order.

        Texts are batched longest first, at most ``batch_tokens`` padded tokens a batch: large enough
        to keep the matrix units busy, small enough that the attention tensors stay in cache (on one
        core, fixed batches of 64 SciFact abstracts took 17% longer than batches of 4,096 tokens).
        ``progress`` shows a bar.
        """
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        with tqdm(total=len(texts), desc="embedding", unit="text", disable=not progress) as bar:
            for batch, vectors in self.encode_batches(texts):
                out[batch] = vectors
                bar.update(len(batch))
        return out

    def encode_batches(self, texts: list[str]) -> Iterator[tuple[list[int], np.ndarray]]:
        """``encode`` one batch at a time: (positions in ``texts``, their unit vectors), longest first.

        For callers that save work between batches, such as an index committing a large file in slices.
        """
        if not texts:
            return
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        ids = encoded["input_ids"]
        types = encoded["token_type_ids"] if "token_type_ids" in self.input_names else None
        for batch in token_budget_batches([len(row) for row in ids], self.batch_tokens):
            arrays = pad_batch(
                [ids[i] for i in batch],
                [types[i] for i in batch] if types is not None else None,
                self.tokenizer.pad_token_id,
            )
            yield batch, self._forward(arrays)

    def prepare_queries(self) -> None:
        """Open the query model now (exporting it on first use), so the first search does not wait for it."""
        if self.device == "cpu":
            _ = self.query_session  # elsewhere queries run on the torch model, which is already loaded

    def encode_query(self, query: str) -> np.ndarray:
        """One query's unit vector (shape (dim,)): ONNX Runtime fp32 on a CPU, the torch model elsewhere."""
        batch = self.tokenizer([query], truncation=True, max_length=self.max_length, return_tensors="np")
        if self.device != "cpu":
            return self._forward(batch)[0]
        return self.query_session.run(None, {name: batch[name] for name in self.input_names})[0][0]


def shared_embedder(model: str, device: str | None = None, dtype: str | None = None) -> Embedder:
    """One Embedder per (model, device, dtype) per process, so reopening indexes does not reload weights."""
    return _shared_embedder(model, device, dtype)


@cache
def _shared_embedder(model: str, device: str | None, dtype: str | None) -> Embedder:
    # Always called with three positional arguments: functools.cache keys on how a function is called,
    # so shared_embedder(m) and shared_embedder(m, None, None) would otherwise load two models.
    return Embedder(model, device=device, dtype=dtype)
