"""ArcFace-family heads and distillation losses: closed forms, numerics at the edges, gradients."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.config import LossConfig
from trainer.losses import (
    MarginHead,
    cosine_distill_loss,
    make_margin_head,
    margin_logits,
    relational_distill_loss,
)


def _target_logit(cos: float, **kw: float) -> float:
    logits = margin_logits(torch.tensor([[cos, 0.0]]), torch.tensor([0]), **kw)
    return float(logits[0, 0])


@pytest.mark.parametrize("cos", [0.95, 0.5, 0.0, -0.5, -0.8])
def test_arcface_matches_closed_form_inside_the_valid_range(cos: float) -> None:
    m, s = 0.5, 32.0
    expected = s * math.cos(math.acos(cos) + m)
    assert _target_logit(cos, scale=s, m2=m) == pytest.approx(expected, rel=1e-5, abs=1e-4)


def test_arcface_continues_linearly_past_pi_minus_m() -> None:
    # theta + m > pi: the th/mm form uses cos - m*sin(m), which keeps the logit decreasing in theta.
    m, s = 0.5, 1.0
    for cos in (-0.9, -0.99):
        assert _target_logit(cos, scale=s, m2=m) == pytest.approx(cos - m * math.sin(m), abs=1e-6)
    values = [_target_logit(c, scale=s, m2=m) for c in torch.linspace(-1, 1, 201).tolist()]
    assert all(b >= a - 1e-6 for a, b in zip(values, values[1:], strict=False))


def test_non_target_logits_are_scaled_cosines() -> None:
    cos = torch.tensor([[0.3, -0.2, 0.7]])
    logits = margin_logits(cos, torch.tensor([1]), scale=10.0, m2=0.5)
    assert logits[0, 0].item() == pytest.approx(3.0)
    assert logits[0, 2].item() == pytest.approx(7.0)


@pytest.mark.parametrize("edge", [1.0, -1.0])
def test_no_nan_in_value_or_gradient_at_cos_plus_minus_one(edge: float) -> None:
    cos = torch.tensor([[edge, 0.1], [0.2, edge]], requires_grad=True)
    logits = margin_logits(cos, torch.tensor([0, 1]), scale=64.0, m2=0.5)
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1]))
    loss.backward()
    assert torch.isfinite(logits).all() and torch.isfinite(loss)
    assert torch.isfinite(cos.grad).all()


def test_head_gives_finite_gradients_when_embedding_equals_a_centre() -> None:
    head = MarginHead(8, 3, scale=64.0, m2=0.5)
    emb = head.weight.detach()[1:2].clone().repeat(2, 1).requires_grad_(True)  # cos = 1 exactly
    loss = head(emb, torch.tensor([1, 1]))
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(emb.grad).all() and torch.isfinite(head.weight.grad).all()


def test_cosface_subtracts_the_margin() -> None:
    assert _target_logit(0.6, scale=64.0, m3=0.35) == pytest.approx(64.0 * 0.25, rel=1e-5)


def test_combined_margin_general_form() -> None:
    cos, m1, m2, m3 = 0.4, 1.2, 0.1, 0.05
    expected = math.cos(m1 * math.acos(cos) + m2) - m3
    assert _target_logit(cos, scale=1.0, m1=m1, m2=m2, m3=m3) == pytest.approx(expected, abs=1e-5)


def test_easy_margin_leaves_obtuse_angles_alone() -> None:
    assert _target_logit(-0.3, scale=1.0, m2=0.5, easy_margin=True) == pytest.approx(-0.3, abs=1e-6)
    assert _target_logit(0.3, scale=1.0, m2=0.5, easy_margin=True) == pytest.approx(
        math.cos(math.acos(0.3) + 0.5), abs=1e-5
    )


def test_sub_centres_take_the_closest_centre() -> None:
    head = MarginHead(4, 2, sub_centers=3)
    with torch.no_grad():
        head.weight.zero_()
        head.weight[0, 0] = 1.0  # class 0, centre 0: +x
        head.weight[1, 1] = 1.0  # class 0, centre 1: +y
        head.weight[2, 2] = 1.0  # class 0, centre 2: +z
        head.weight[3:, 3] = 1.0  # class 1: +w
    cos = head.cosine(torch.tensor([[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
    assert cos.tolist() == [[1.0, 0.0], [0.0, 1.0]]


def test_logits_are_fp32_even_for_half_embeddings() -> None:
    head = MarginHead(8, 4)
    cos = head.cosine(torch.randn(3, 8).half())
    assert cos.dtype == torch.float32


def test_head_factory_follows_the_config() -> None:
    arc = make_margin_head(LossConfig.model_validate({"arcface": {"scale": 16, "margin": 0.3}}), 8, 5)
    assert (arc.scale, arc.m2, arc.m3) == (16.0, 0.3, 0.0)
    cosface = make_margin_head(LossConfig.model_validate({"name": "cosface"}), 8, 5)
    assert (cosface.m2, cosface.m3) == (0.0, 0.35)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MarginHead(8, 1)


def test_distillation_losses() -> None:
    t = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    assert cosine_distill_loss(t * 3.0, t).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine_distill_loss(-t, t).item() == pytest.approx(2.0, abs=1e-6)
    # Relational: invariant to a rotation of the student's space, and dimension-agnostic.
    q, _ = torch.linalg.qr(torch.randn(4, 4))
    assert relational_distill_loss(t @ q, t).item() == pytest.approx(0.0, abs=1e-6)
    assert relational_distill_loss(torch.randn(6, 9), t).item() > 0.0
