"""Training checkpoints: everything needed to resume a run exactly, written atomically.

That is the weights, heads, optimizer, schedule, position, random-number states and history.
"""

from __future__ import annotations

import io
import logging
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from core._atomic import atomic_write_bytes
from core.errors import CheckpointError

__all__ = [
    "TRAINING_CHECKPOINT_FORMAT",
    "capture_rng",
    "load_training_checkpoint",
    "restore_rng",
    "save_training_checkpoint",
]

log = logging.getLogger(__name__)

TRAINING_CHECKPOINT_FORMAT = "ghostface-training"
TRAINING_CHECKPOINT_VERSION = 1


def capture_rng() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's generators (CPU, and CUDA when present)."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the generators' states saved by :func:`capture_rng` (CUDA only when it is available)."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_training_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a resumable checkpoint (``payload`` plus format tags) atomically: a crash keeps the old one."""
    data = {"format": TRAINING_CHECKPOINT_FORMAT, "version": TRAINING_CHECKPOINT_VERSION, **payload}
    buffer = io.BytesIO()
    torch.save(data, buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_training_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_training_checkpoint`.

    It holds random-number states (NumPy arrays, Python tuples), so it is read with full unpickling:
    resume only from checkpoints you made.

    Raises:
        CheckpointError: missing, unreadable, or not a training checkpoint (e.g. a backbone-only file).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"training checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"{path} is not a readable training checkpoint: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != TRAINING_CHECKPOINT_FORMAT:
        kind = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(
            f"{path} is not a training checkpoint (found {kind!r}); resume needs the run's last.pt, "
            "not an exported backbone"
        )
    if data.get("version") != TRAINING_CHECKPOINT_VERSION:
        raise CheckpointError(f"{path}: training checkpoint version {data.get('version')} is not supported")
    return data
