"""Margin-softmax heads (ArcFace, CosFace, the combined margin, sub-centres) and distillation losses.

The ArcFace target logit uses the closed "th/mm" form (MODEL_SPEC 3.2 (1)): cos(theta + m) by the
angle-addition formula while theta + m <= pi, and the monotonic linear continuation cos - m*sin(m)
beyond. Cosines are clamped to [-1 + 1e-7, 1 - 1e-7] before the square root, so cos = +-1 gives finite
gradients; logits are fp32 whatever the backbone's dtype; the one-hot lives on the cosines' device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from trainer.config import LossConfig

__all__ = [
    "COS_EPS",
    "MarginHead",
    "cosine_distill_loss",
    "make_margin_head",
    "margin_logits",
    "relational_distill_loss",
]

COS_EPS = 1e-7


def margin_logits(
    cos: torch.Tensor,
    labels: torch.Tensor,
    *,
    scale: float,
    m1: float = 1.0,
    m2: float = 0.0,
    m3: float = 0.0,
    easy_margin: bool = False,
) -> torch.Tensor:
    """Scaled logits with the margin applied to each row's target class.

    Target logit = s * (cos(m1 * theta + m2) - m3); the other logits are s * cos. ArcFace is
    (1, m, 0), CosFace (1, 0, m), SphereFace-style (m1 > 1, 0, 0).

    Args:
        cos: ``(N, C)`` cosines between embeddings and class centres.
        labels: ``(N,)`` int64 class indices in ``[0, C)``.
        scale: the logit scale s.
        m1: the multiplicative angular margin (SphereFace).
        m2: the additive angular margin (ArcFace).
        m3: the additive cosine margin (CosFace).
        easy_margin: apply the additive angular margin only where cos > 0.

    Returns:
        ``(N, C)`` float32 logits.
    """
    cos = cos.float().clamp(-1.0 + COS_EPS, 1.0 - COS_EPS)
    target = cos.gather(1, labels.view(-1, 1)).squeeze(1)
    if m1 == 1.0 and m3 == 0.0 and m2 == 0.0:
        phi = target
    elif m1 == 1.0 and m2 == 0.0:
        phi = target - m3
    elif m1 == 1.0:
        sin = torch.sqrt(1.0 - target * target)
        phi = target * math.cos(m2) - sin * math.sin(m2)
        if easy_margin:
            phi = torch.where(target > 0, phi, target)
        else:
            # Past theta = pi - m, cos(theta + m) would rise again: continue linearly (monotonic).
            th = math.cos(math.pi - m2)
            mm = math.sin(math.pi - m2) * m2
            phi = torch.where(target > th, phi, target - mm)
        phi = phi - m3
    else:
        theta = torch.acos(target)
        angle = m1 * theta + m2
        # Beyond pi the cosine turns back up; -2 - cos(angle) keeps it decreasing (GhostFaceNets' form).
        phi = torch.where(angle <= math.pi, torch.cos(angle), -2.0 - torch.cos(angle)) - m3
    one_hot = torch.zeros_like(cos, device=cos.device).scatter_(1, labels.view(-1, 1), 1.0)
    logits = torch.where(one_hot.bool(), phi.unsqueeze(1).expand_as(cos), cos)
    return logits * scale


class MarginHead(nn.Module):
    """Class centres plus a margin softmax cross-entropy: ``head(embeddings, labels) -> loss``.

    Args:
        embedding_size: length of the embeddings.
        num_classes: number of identities.
        scale, m1, m2, m3, easy_margin: see :func:`margin_logits`.
        sub_centers: K > 1 keeps K centres per class and uses the closest one (sub-center ArcFace).
    """

    def __init__(
        self,
        embedding_size: int,
        num_classes: int,
        *,
        scale: float = 32.0,
        m1: float = 1.0,
        m2: float = 0.5,
        m3: float = 0.0,
        easy_margin: bool = False,
        sub_centers: int = 1,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a margin softmax needs at least 2 classes, got {num_classes}")
        if sub_centers < 1:
            raise ValueError(f"sub_centers must be >= 1, got {sub_centers}")
        self.num_classes = num_classes
        self.sub_centers = sub_centers
        self.scale, self.m1, self.m2, self.m3 = float(scale), float(m1), float(m2), float(m3)
        self.easy_margin = easy_margin
        self.weight = nn.Parameter(torch.empty(num_classes * sub_centers, embedding_size))
        # N(0, 0.01) as insightface's PartialFC; only the direction matters after normalisation.
        nn.init.normal_(self.weight, std=0.01)

    def cosine(self, embeddings: torch.Tensor) -> torch.Tensor:
        """``(N, num_classes)`` fp32 cosines (max over sub-centres)."""
        emb = F.normalize(embeddings.float(), dim=1, eps=1e-12)
        centres = F.normalize(self.weight.float(), dim=1, eps=1e-12)
        cos = emb @ centres.t()
        if self.sub_centers > 1:
            cos = cos.view(-1, self.num_classes, self.sub_centers).amax(dim=2)
        return cos

    def logits(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The scaled cosine logits ``(N, num_classes)`` with the margins applied to the true class."""
        return margin_logits(
            self.cosine(embeddings),
            labels,
            scale=self.scale,
            m1=self.m1,
            m2=self.m2,
            m3=self.m3,
            easy_margin=self.easy_margin,
        )

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The cross-entropy of the margin logits."""
        return F.cross_entropy(self.logits(embeddings, labels), labels)


def make_margin_head(config: LossConfig, embedding_size: int, num_classes: int) -> MarginHead:
    """Build the head that ``config.name`` selects."""
    if config.name == "arcface":
        c = config.arcface
        return MarginHead(
            embedding_size,
            num_classes,
            scale=c.scale,
            m2=c.margin,
            easy_margin=c.easy_margin,
            sub_centers=c.sub_centers,
        )
    if config.name == "cosface":
        c2 = config.cosface
        return MarginHead(embedding_size, num_classes, scale=c2.scale, m2=0.0, m3=c2.margin)
    c3 = config.combined
    return MarginHead(embedding_size, num_classes, scale=c3.scale, m1=c3.m1, m2=c3.m2, m3=c3.m3)


def cosine_distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(student_i, teacher_i), in fp32."""
    return (1.0 - F.cosine_similarity(student.float(), teacher.float(), dim=1, eps=1e-8)).mean()


def relational_distill_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the in-batch cosine-similarity matrices (off-diagonal entries).

    Teaches the student how the teacher ranks *other* faces against each one, not just where each
    target lies; the two embeddings may have different dimensions.
    """
    s = F.normalize(student.float(), dim=1, eps=1e-8)
    t = F.normalize(teacher.float(), dim=1, eps=1e-8)
    n = s.shape[0]
    if n < 2:
        return s.sum() * 0.0
    mask = ~torch.eye(n, dtype=torch.bool, device=s.device)
    return F.mse_loss((s @ s.t())[mask], (t @ t.t())[mask])
