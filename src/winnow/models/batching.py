"""Group inputs into batches by a token budget, longest first, so padding wastes almost nothing."""

from __future__ import annotations

import numpy as np


def token_budget_batches(lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """Indices of the inputs, grouped into batches whose padded size stays within ``batch_tokens``.

    Inputs are sorted longest first; a batch's padded size is its count times its longest input, so
    similar lengths travel together. An input longer than the budget still gets a batch of its own.
    """
    if batch_tokens <= 0:
        raise ValueError(f"batch_tokens must be positive, not {batch_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    batches: list[list[int]] = []
    current: list[int] = []
    for index in order:
        width = lengths[current[0]] if current else lengths[index]
        if current and (len(current) + 1) * width > batch_tokens:
            batches.append(current)
            current = []
        current.append(index)
    if current:
        batches.append(current)
    return batches


def pad_batch(
    input_ids: list[list[int]], token_type_ids: list[list[int]] | None, pad_id: int
) -> dict[str, np.ndarray]:
    """Right-padded int64 arrays (input_ids, attention_mask and token_type_ids when the model has them)."""
    width = max(len(ids) for ids in input_ids)
    batch = {
        "input_ids": np.full((len(input_ids), width), pad_id, dtype=np.int64),
        "attention_mask": np.zeros((len(input_ids), width), dtype=np.int64),
    }
    if token_type_ids is not None:
        batch["token_type_ids"] = np.zeros((len(input_ids), width), dtype=np.int64)
    for row, ids in enumerate(input_ids):
        batch["input_ids"][row, : len(ids)] = ids
        batch["attention_mask"][row, : len(ids)] = 1
        if token_type_ids is not None:
            batch["token_type_ids"][row, : len(ids)] = token_type_ids[row]
    return batch
