"""The training recipe the trainer tab starts from, and its fitting to a user's (small) data set.

The tab's default is what made the shipped model, ``configs/wild_finetune.json``: fine-tune the installed
GhostFaceNetV2 by distillation from SFace, with the teacher online on degraded views. The recipe is kept
here as well because a packaged app has no ``configs/`` folder; a test checks that the two agree.

A recipe written for tens of thousands of crops can ask for more than a user's photos hold (60 held-out
people for validation, batches of 96): :func:`fit_to_data` scales those down and says what it changed.
"""

from __future__ import annotations

import copy
from collections import Counter
from typing import Any

__all__ = ["FINETUNE_RECIPE", "finetune_recipe", "fit_to_data"]

#: ``configs/wild_finetune.json`` without its machine-specific keys (data, run folder, start checkpoint).
FINETUNE_RECIPE: dict[str, Any] = {
    "mode": "distill",
    "epochs": 40,
    "max_minutes": 75,
    "batch_size": 96,
    "embedding_size": 512,
    "backbone": {
        "name": "ghostfacenetv2",
        "width": 1.0,
        "stem_stride": 2,
        "prelu": "channel",
        "dfc_upsample": "nearest",
    },
    "optimizer": {"name": "adamw", "adamw": {"base_lr": 0.001, "weight_decay": 0.05}},
    "scheduler": {"name": "cosine", "warmup_epochs": 0.1, "min_lr": 1e-05},
    "distill": {"teacher": "sface", "weight": 1.0, "relational_weight": 1.0, "online": True},
    "data": {"flip": True, "color_jitter": 0.25, "shift_px": 0, "degrade": True, "num_workers": 0},
    "validation": {
        "holdout_identities": 60,
        "holdout_min_images": 6,
        "holdout_max_images": 60,
        "pairs_per_fold": 40,
    },
    "early_stop": {"patience": 6},
    "grad_clip": 5.0,
    "seed": 0,
    "log_iters": 20,
    "threads": 1,
    "channels_last": True,
}


def finetune_recipe() -> dict[str, Any]:
    """A fresh copy of :data:`FINETUNE_RECIPE` (callers change it freely)."""
    return copy.deepcopy(FINETUNE_RECIPE)


def fit_to_data(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Scale the validation hold-out and the batch of ``config`` down to what its data holds.

    Validation holds out at most a third of the people that have enough crops (at least 2, else there is
    no validation and the run keeps its last epoch); a batch is at most the crops left to train on.

    Returns:
        The (possibly) changed config dict and one plain sentence per change.

    Raises:
        FileNotFoundError: a data folder does not exist.
        ValueError: the data folders hold no crop.
    """
    from trainer.data import scan_folders

    config = copy.deepcopy(config)
    notes: list[str] = []
    samples = scan_folders(config["data_path"])
    validation = config.setdefault("validation", {})
    wanted = int(validation.get("holdout_identities", 0) or 0)
    low = int(validation.get("holdout_min_images", 4))
    high = int(validation.get("holdout_max_images", 1000))
    counts = Counter(int(label) for label in samples.labels if label >= 0)
    eligible = sum(1 for n in counts.values() if low <= n <= high)
    held = min(wanted, eligible // 3)
    if held < 2:
        held = 0
    if held != wanted and not validation.get("pairs"):
        validation["holdout_identities"] = held
        notes.append(
            f"validation holds out {held} people instead of {wanted}: {eligible} have {low} to {high} crops"
            if held
            else f"no validation: it needs at least 6 people with {low} or more crops each ({eligible} have)"
        )
    held_crops = sorted((n for n in counts.values() if low <= n <= high), reverse=True)[:held]
    left = len(samples) - sum(held_crops)
    batch = int(config.get("batch_size", 128))
    if 2 <= left < batch:
        config["batch_size"] = left
        notes.append(f"batches of {left} crops instead of {batch}: that is all the training data")
    return config, notes
