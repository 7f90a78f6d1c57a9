"""The training losses on hand-made scores whose right answers are known."""

from __future__ import annotations

import math

import pytest
import torch

from winnow.training.losses import kl_distillation, listwise_softmax, margin_mse, pointwise_bce


def test_listwise_softmax_is_cross_entropy_on_column_zero() -> None:
    scores = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 1.0]])
    expected = [-math.log(math.e**2 / (math.e**2 + 2)), -math.log(1 / (1 + 2 * math.e))]
    assert listwise_softmax(scores).item() == pytest.approx(sum(expected) / 2, rel=1e-6)


def test_listwise_softmax_falls_as_the_positive_rises() -> None:
    low = listwise_softmax(torch.tensor([[0.0, 1.0, 1.0]]))
    high = listwise_softmax(torch.tensor([[3.0, 1.0, 1.0]]))
    assert high < low


def test_pointwise_bce_labels_first_column_relevant() -> None:
    scores = torch.tensor([[0.0, 0.0]])
    assert pointwise_bce(scores).item() == pytest.approx(math.log(2), rel=1e-6)
    right = pointwise_bce(torch.tensor([[5.0, -5.0]]))
    wrong = pointwise_bce(torch.tensor([[-5.0, 5.0]]))
    assert right.item() == pytest.approx(math.log1p(math.exp(-5.0)), rel=1e-5)
    assert wrong > right


def test_margin_mse_compares_margins_not_scores() -> None:
    teacher = torch.tensor([[5.0, 2.0, 1.0]])
    shifted = teacher - 10.0
    assert margin_mse(shifted, teacher).item() == pytest.approx(0.0, abs=1e-7)
    student = torch.tensor([[1.0, 1.0, 1.0]])
    assert margin_mse(student, teacher).item() == pytest.approx((9 + 16) / 2, rel=1e-6)


def test_kl_distillation_is_zero_only_when_distributions_match() -> None:
    teacher = torch.tensor([[3.0, 1.0, 0.0]])
    assert kl_distillation(teacher + 7.0, teacher).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_distillation(torch.zeros(1, 3), teacher).item() > 0.1


def test_losses_have_gradients() -> None:
    scores = torch.tensor([[0.5, 0.2, -0.1]], requires_grad=True)
    listwise_softmax(scores).backward()
    assert scores.grad is not None
    assert scores.grad[0, 0] < 0 < scores.grad[0, 1]
