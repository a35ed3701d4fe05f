"""Per-epoch verification accuracy of the network being trained (10-fold, MODEL_SPEC 5.1).

The engine's evaluation module targets whole pipelines (detect, align, embed); during training we only
need the network on already-aligned crops, scored with the engine's 10-fold arithmetic. The crops of a
pair list are decoded once and kept in memory for every epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.evaluation import EvaluationError, verification_metrics
from trainer.augment import Degradation, degrade
from trainer.data import Pair, load_crop_rgb, normalize

__all__ = [
    "IdentificationResult",
    "IdentificationSet",
    "PairSet",
    "VerificationResult",
    "embed_crops",
    "ten_fold_accuracy",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """Mean and spread of the per-fold accuracies, and the mean chosen cosine threshold."""

    accuracy: float
    std: float
    threshold_cos: float
    pairs: int


def ten_fold_accuracy(similarity: np.ndarray, same: np.ndarray, folds: np.ndarray) -> VerificationResult:
    """K-fold verification accuracy: each fold's threshold is the best one on the other folds.

    The engine's :func:`core.evaluation.verification_metrics` does the work (thresholds scanned on the
    squared L2 distance 2 - 2 cos in steps of 0.01, as insightface's ``verification.py``). With fewer
    than two usable folds (tiny validation sets) the best threshold over all pairs is reported, which
    is optimistic, and the spread is 0.

    Args:
        similarity: ``(P,)`` cosine similarity per pair.
        same: ``(P,)`` bool, True for a same-person pair.
        folds: ``(P,)`` int fold index per pair.
    """
    similarity = np.asarray(similarity, np.float64)
    same = np.asarray(same, bool)
    try:
        result = verification_metrics(similarity, same, folds=np.asarray(folds))
    except EvaluationError:
        thresholds = np.arange(0.0, 4.0, 0.01)
        correct = ((2.0 - 2.0 * similarity)[None, :] < thresholds[:, None]) == same[None, :]
        best = int(correct.mean(1).argmax())
        return VerificationResult(float(correct[best].mean()), 0.0, 1.0 - thresholds[best] / 2.0, len(same))
    return VerificationResult(result.accuracy, result.std, result.threshold, int(len(same)))


@torch.inference_mode()
def embed_crops(
    model: nn.Module, crops_rgb: np.ndarray, *, flip: bool, batch_size: int = 128, channels_last: bool = False
) -> np.ndarray:
    """L2-normalised embeddings of ``(N, 112, 112, 3) uint8`` RGB crops (flip-sum when ``flip``)."""
    device = next(model.parameters()).device
    out: list[torch.Tensor] = []
    for start in range(0, len(crops_rgb), batch_size):
        x = torch.from_numpy(crops_rgb[start : start + batch_size]).permute(0, 3, 1, 2).to(device)
        x = normalize(x)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        emb = model(x).float()
        if flip:
            emb = emb + model(x.flip(3)).float()
        out.append(F.normalize(emb, dim=1).cpu())
    return torch.cat(out).numpy() if out else np.empty((0, 0), np.float32)


class PairSet:
    """A validation pair list with its crops decoded once.

    Args:
        pairs: the pairs (see :func:`trainer.data.make_holdout_pairs` and :func:`trainer.data.read_pairs`).

    Raises:
        ImageReadError: a crop of the list cannot be read.
        ValueError: the list is empty or has no same or no different pair.
    """

    def __init__(self, pairs: Sequence[Pair]) -> None:
        if not pairs:
            raise ValueError("the validation pair list is empty")
        same = np.array([p.same for p in pairs], bool)
        if same.all() or not same.any():
            raise ValueError("the validation pair list needs both same and different pairs")
        files = sorted({p.a for p in pairs} | {p.b for p in pairs})
        index = {f: i for i, f in enumerate(files)}
        self.crops = np.stack([load_crop_rgb(f) for f in files])
        self.left = np.array([index[p.a] for p in pairs])
        self.right = np.array([index[p.b] for p in pairs])
        self.same = same
        self.folds = np.array([p.fold for p in pairs])

    def __len__(self) -> int:
        return len(self.same)

    def evaluate(
        self, model: nn.Module, *, flip: bool = True, channels_last: bool = False
    ) -> VerificationResult:
        """10-fold accuracy of ``model`` (switched to eval mode and back)."""
        was_training = model.training
        model.eval()
        try:
            emb = embed_crops(model, self.crops, flip=flip, channels_last=channels_last)
        finally:
            model.train(was_training)
        similarity = (emb[self.left] * emb[self.right]).sum(1)
        return ten_fold_accuracy(similarity, self.same, self.folds)


@dataclass(frozen=True, slots=True)
class IdentificationResult:
    """Closed-set rank-1 identification on held-out people: clean probes and small, degraded ones."""

    rank1: float
    rank1_small: float
    probes: int
    identities: int


class IdentificationSet:
    """Held-out identities as a gallery (each person's first crop) and probes (the other crops).

    Verification pairs say whether two crops match; identification is what the application does (name
    a face among everyone enrolled). The ``small`` probes are the same crops shrunk to 20-40 px and back,
    JPEG-compressed half the time, drawn once from a fixed seed: the live camera's far, small faces.

    Raises:
        ValueError: fewer than two identities with at least two crops.
    """

    def __init__(self, held: Mapping[str, Sequence[Path]], *, seed: int = 0) -> None:
        people = sorted(name for name, crops in held.items() if len(crops) >= 2)
        if len(people) < 2:
            raise ValueError("identification needs at least two held-out identities with two crops each")
        gallery, probes, labels = [], [], []
        for label, name in enumerate(people):
            crops = sorted(held[name])
            gallery.append(load_crop_rgb(crops[0]))
            for crop in crops[1:]:
                probes.append(load_crop_rgb(crop))
                labels.append(label)
        rng = np.random.default_rng(seed)
        spec = Degradation(
            p_small=1.0, small_px=(20, 40), p_jpeg=0.5, p_geometry=0.0, p_blur=0.0, p_gray=0.0, p_gamma=0.0
        )
        self.gallery = np.stack(gallery)
        self.probes = np.stack(probes)
        self.small = np.stack([degrade(p, rng, spec) for p in probes])
        self.labels = np.asarray(labels)

    def evaluate(
        self, model: nn.Module, *, flip: bool = True, channels_last: bool = False
    ) -> IdentificationResult:
        """Rank-1 of ``model`` on the clean and the small probes (model switched to eval and back)."""
        was_training = model.training
        model.eval()
        try:
            gallery = embed_crops(model, self.gallery, flip=flip, channels_last=channels_last)
            clean = embed_crops(model, self.probes, flip=flip, channels_last=channels_last)
            small = embed_crops(model, self.small, flip=flip, channels_last=channels_last)
        finally:
            model.train(was_training)

        def rank1(probes: np.ndarray) -> float:
            return float(((probes @ gallery.T).argmax(1) == self.labels).mean())

        return IdentificationResult(rank1(clean), rank1(small), len(self.labels), len(self.gallery))
