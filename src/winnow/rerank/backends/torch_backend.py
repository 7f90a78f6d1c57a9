"""Cross-encoder inference in PyTorch, in the model's own number format or in bf16/fp16."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from winnow.models.hardware import DTYPES
from winnow.rerank.backends.loading import load_sequence_classifier, takes_token_type_ids


class TorchBackend:
    """A Hugging Face sequence-classification model run under ``torch.inference_mode``."""

    name = "torch"

    def __init__(self, model_dir: Path, device: str, dtype: str) -> None:
        self.device = device
        self.dtype = dtype
        self.model = load_sequence_classifier(model_dir, dtype=DTYPES[dtype]).to(device).eval()
        self.num_labels = self.model.config.num_labels
        self._takes_token_types = takes_token_type_ids(self.model)

    @torch.inference_mode()
    def __call__(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        inputs = {
            name: torch.from_numpy(array).to(self.device)
            for name, array in batch.items()
            if name != "token_type_ids" or self._takes_token_types
        }
        return self.model(**inputs).logits.float().cpu().numpy()
