"""Tiny real training sets built from ../shared/data/train, shared by the trainer tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

# Identities with enough crops for same-person validation pairs, and a few loose unlabelled crops.
IDENTITIES = 24
CROPS_PER_IDENTITY = 6
UNLABELLED = 16


@pytest.fixture(scope="session")
def tiny_data(train_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/labelled/<id>/<crop>.jpg`` (24 CelebA identities x 6) and ``<root>/unlabelled/*.jpg`` (16 UTKFace)."""
    root = tmp_path_factory.mktemp("tiny-train")
    labelled = root / "labelled"
    people = [
        p
        for p in sorted((train_dir / "celeba").iterdir())
        if len(list(p.glob("*.jpg"))) >= CROPS_PER_IDENTITY
    ]
    for person in people[:IDENTITIES]:
        target = labelled / person.name
        target.mkdir(parents=True)
        for crop in sorted(person.glob("*.jpg"))[:CROPS_PER_IDENTITY]:
            shutil.copy2(crop, target / crop.name)
    unlabelled = root / "unlabelled"
    unlabelled.mkdir()
    for crop in sorted((train_dir / "utkface").glob("*.jpg"))[:UNLABELLED]:
        shutil.copy2(crop, unlabelled / crop.name)
    return root


@pytest.fixture(scope="session")
def teacher_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SFace target cache for the whole session: each tiny crop meets the teacher once."""
    return tmp_path_factory.mktemp("teacher-cache")


def tiny_config(root: Path, out: Path, cache: Path, **overrides: object) -> dict:
    """A config dict for a run of a few batches of 8 on the tiny set (width 0.5 to keep it quick)."""
    config: dict = {
        "mode": "both",
        "data_path": [str(root / "labelled"), str(root / "unlabelled")],
        "output_dir": str(out),
        "epochs": 2,
        "batch_size": 8,
        "max_steps_per_epoch": 3,
        "backbone": {"width": 0.5, "stem_stride": 2},
        "optimizer": {"name": "adamw", "adamw": {"base_lr": 0.002}},
        "scheduler": {"name": "cosine", "warmup_epochs": 0.5},
        "loss": {"weight": 0.1},
        "distill": {"cache_dir": str(cache)},
        "validation": {"holdout_identities": 0},
        "threads": 1,
        "log_iters": 1,
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config
