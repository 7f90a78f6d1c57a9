"""Dev-set evaluation during training: rerank each dev query's candidates and measure nDCG@10 and MRR@10.

Early stopping and checkpoint selection need a number that tracks ranking quality, not the training loss.
"""

from __future__ import annotations

import math

import torch

from winnow.training.data import Group


def ndcg_at_k(labels_in_rank_order: list[int], all_labels: list[int] | None = None, k: int = 10) -> float:
    """nDCG@k with linear gains (trec_eval's convention, which BEIR and TREC DL figures use).

    ``all_labels`` are the grades of every judged document of the query, for the ideal ranking; by
    default the ranked items' own grades.
    """
    dcg = sum(g / math.log2(i + 2) for i, g in enumerate(labels_in_rank_order[:k]))
    ideal = sorted(all_labels if all_labels is not None else labels_in_rank_order, reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def mrr_at_k(labels_in_rank_order: list[int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant item within the top k, else 0."""
    for i, grade in enumerate(labels_in_rank_order[:k]):
        if grade > 0:
            return 1.0 / (i + 1)
    return 0.0


@torch.no_grad()
def score_pairs(
    model: torch.nn.Module,
    tokenizer,
    pairs: list[tuple[str, str]],
    max_length: int,
    batch_size: int = 32,
    autocast_dtype: torch.dtype | None = None,
) -> list[float]:
    """Logits of a cross-encoder for (query, passage) pairs, in input order."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    scores: list[float] = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        batch = tokenizer(
            [q for q, _ in chunk],
            [p for _, p in chunk],
            truncation="longest_first",
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        enabled = autocast_dtype is not None
        with torch.autocast(device.type, dtype=autocast_dtype or torch.float32, enabled=enabled):
            logits = model(**batch).logits
        scores.extend(logits.float().view(-1).tolist())
    model.train(was_training)
    return scores


def evaluate_groups(
    model: torch.nn.Module,
    tokenizer,
    groups: list[Group],
    max_length: int,
    autocast_dtype: torch.dtype | None = None,
) -> dict[str, float]:
    """Mean nDCG@10 and MRR@10 over dev queries, each ranking its own positives and negatives."""
    pairs, labels, sizes = [], [], []
    for group in groups:
        candidates = [(p, 1) for p in group.positives] + [(n, 0) for n in group.negatives]
        pairs.extend((group.query, text) for text, _ in candidates)
        labels.append([label for _, label in candidates])
        sizes.append(len(candidates))
    scores = score_pairs(model, tokenizer, pairs, max_length, autocast_dtype=autocast_dtype)
    ndcg, mrr, offset = [], [], 0
    for group_labels, size in zip(labels, sizes, strict=True):
        group_scores = scores[offset : offset + size]
        offset += size
        order = sorted(range(size), key=lambda i: -group_scores[i])
        ranked = [group_labels[i] for i in order]
        ndcg.append(ndcg_at_k(ranked))
        mrr.append(mrr_at_k(ranked))
    return {"ndcg@10": sum(ndcg) / len(ndcg), "mrr@10": sum(mrr) / len(mrr)}
