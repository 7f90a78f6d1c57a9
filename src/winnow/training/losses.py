"""Training losses for a one-logit cross-encoder.

Every loss takes ``scores`` shaped (queries, candidates) with the positive in column 0 and negatives after
it, because that is how the trainer lays out a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pointwise_bce(scores: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on each (query, passage) on its own: column 0 is relevant, the rest are not."""
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(scores, labels)


def listwise_softmax(scores: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of a softmax over one positive and n negatives: rank the positive above all of them."""
    target = torch.zeros(scores.shape[0], dtype=torch.long, device=scores.device)
    return F.cross_entropy(scores, target)


def margin_mse(scores: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """MarginMSE distillation: match the teacher's score margins (positive minus each negative)."""
    student_margin = scores[:, :1] - scores[:, 1:]
    teacher_margin = teacher[:, :1] - teacher[:, 1:]
    return F.mse_loss(student_margin, teacher_margin)


def kl_distillation(scores: torch.Tensor, teacher: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """KL divergence from the teacher's softmax over the candidates to the student's."""
    return (
        F.kl_div(
            F.log_softmax(scores / temperature, dim=-1),
            F.log_softmax(teacher / temperature, dim=-1),
            log_target=True,
            reduction="batchmean",
        )
        * temperature**2
    )


LOSSES = {"bce": pointwise_bce, "listwise": listwise_softmax}
DISTILLATION_LOSSES = {"margin_mse": margin_mse, "kl": kl_distillation}
