"""A checkpoint's similarity threshold, calibrated on the run's held-out identities against a reference model.

A cosine threshold means something only for the model it was measured on. The one the trainer stores
(best accuracy on balanced validation pairs) is too lenient for a gallery, where almost every comparison is
with somebody else. This module picks the threshold at which the checkpoint accepts strangers exactly as
often as the reference embedder (SFace) does at its own published threshold, on pairs drawn from the
identities the run held out, so a user switching models keeps the same false-accept behaviour.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core.embedding import Embedder, create_embedder
from core.ghostfacenet import load_backbone
from trainer.config import TrainConfig
from trainer.data import (
    Samples,
    load_crop_rgb,
    make_holdout_pairs,
    scan_folders,
    split_holdout,
    subset_people,
)
from trainer.validation import embed_crops, ten_fold_accuracy

__all__ = ["Calibration", "calibrate_threshold", "heldout_crops", "trained_crops"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Calibration:
    """The calibrated threshold and what it means on the held-out pairs.

    Attributes:
        threshold: the checkpoint's cosine threshold (false-accept rate matched to the reference's).
        far: its false-accept rate there (different-person pairs accepted).
        tar: its true-accept rate there (same-person pairs accepted).
        accuracy, accuracy_std: its 10-fold verification accuracy on the pairs.
        reference: the reference model's id; ``reference_threshold``, ``reference_far``, ``reference_tar``
            and ``reference_accuracy`` its figures on the same pairs.
        same_pairs, different_pairs, identities: the size of the pair set.
    """

    threshold: float
    far: float
    tar: float
    accuracy: float
    accuracy_std: float
    reference: str
    reference_threshold: float
    reference_far: float
    reference_tar: float
    reference_accuracy: float
    same_pairs: int
    different_pairs: int
    identities: int

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-ready dict."""
        return asdict(self)


def heldout_crops(config: TrainConfig) -> dict[str, list[Path]]:
    """The crops of the identities ``config``'s run held out of training (the same draw as the trainer's).

    Raises:
        ValueError: the config holds out no identities, or the data no longer has enough of them.
    """
    return _split(config)[1]


def trained_crops(config: TrainConfig, *, seed: int = 1) -> dict[str, list[Path]]:
    """As many of the people ``config``'s run trained on as it held out, with their crops.

    Verification on them against :func:`heldout_crops` measures the generalisation gap: a network that
    separates the people it was trained on far better than new ones is limited by its data, not its size.

    Raises:
        ValueError: as :func:`heldout_crops`, or too few trained people with enough crops.
    """
    rest, _ = _split(config)
    val = config.validation
    rest = subset_people(rest, config.data.people_fraction, seed=config.seed)
    _, trained = split_holdout(
        rest,
        val.holdout_identities,
        min_images=val.holdout_min_images,
        max_images=val.holdout_max_images,
        seed=seed,
    )
    return trained


def _split(config: TrainConfig) -> tuple[Samples, dict[str, list[Path]]]:
    """The trainer's own draw of held-out people: (the training samples, the held-out crops)."""
    val = config.validation
    if not val.holdout_identities:
        raise ValueError("the run held out no identities (validation.holdout_identities is 0)")
    samples = scan_folders(config.data_path, min_images_per_class=config.data.min_images_per_class)
    return split_holdout(
        samples,
        val.holdout_identities,
        min_images=val.holdout_min_images,
        max_images=val.holdout_max_images,
        seed=config.seed,
    )


def calibrate_threshold(
    checkpoint: str | Path,
    held: dict[str, list[Path]],
    *,
    reference: Embedder | None = None,
    pairs_per_fold: int = 600,
    seed: int = 0,
) -> Calibration:
    """Calibrate ``checkpoint``'s threshold on same/different pairs of the held-out crops ``held``.

    Args:
        checkpoint: a backbone checkpoint.
        held: crops per held-out identity (see :func:`heldout_crops`).
        reference: the model whose false-accept rate is matched (default SFace at its own threshold).
        pairs_per_fold: same and different pairs per fold (10 identity-disjoint folds).
        seed: the pair draw.

    Raises:
        ValueError: too few identities for the folds, or the reference has no threshold of its own.
    """
    reference = reference or create_embedder("sface")
    ref_threshold = reference.suggested_threshold
    if ref_threshold is None:
        raise ValueError(f"the reference {reference.model_id} has no threshold of its own to match")
    pairs = make_holdout_pairs(held, pairs_per_fold=pairs_per_fold, seed=seed)
    files = sorted({p.a for p in pairs} | {p.b for p in pairs})
    index = {f: i for i, f in enumerate(files)}
    crops = np.stack([load_crop_rgb(f) for f in files])
    left = np.array([index[p.a] for p in pairs])
    right = np.array([index[p.b] for p in pairs])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])

    model = load_backbone(checkpoint).eval()
    mine = embed_crops(model, crops, flip=True)
    theirs = reference.embed(np.ascontiguousarray(crops[..., ::-1]), flip=True)
    sim_mine = (mine[left] * mine[right]).sum(1)
    sim_ref = (theirs[left] * theirs[right]).sum(1)

    ref_far = float((sim_ref[~same] >= ref_threshold).mean())
    # The lowest threshold whose false-accept rate does not exceed the reference's.
    different = np.sort(sim_mine[~same])[::-1]
    allowed = int(np.floor(ref_far * len(different)))
    threshold = float(np.nextafter(different[allowed], np.float32(2.0))) if allowed < len(different) else -1.0
    threshold = math.ceil(threshold * 1e4) / 1e4  # stored with 4 decimals: round up, never accept more
    mine_acc = ten_fold_accuracy(sim_mine, same, folds)
    ref_acc = ten_fold_accuracy(sim_ref, same, folds)
    result = Calibration(
        threshold=threshold,
        far=float((sim_mine[~same] >= threshold).mean()),
        tar=float((sim_mine[same] >= threshold).mean()),
        accuracy=mine_acc.accuracy,
        accuracy_std=mine_acc.std,
        reference=reference.model_id,
        reference_threshold=float(ref_threshold),
        reference_far=ref_far,
        reference_tar=float((sim_ref[same] >= ref_threshold).mean()),
        reference_accuracy=ref_acc.accuracy,
        same_pairs=int(same.sum()),
        different_pairs=int((~same).sum()),
        identities=len(held),
    )
    log.info("calibration of %s: %s", checkpoint, result)
    return result
