"""Distillation from a teacher embedder: cached teacher targets and the student's projection head.

The teacher (an engine embedder, SFace by default) is run once per crop and once per mirrored crop; both
L2-normalised embeddings are cached in SQLite keyed by (file SHA-256, teacher ``model_id``), so a second
run, a resumed run or a run on an overlapping folder pays only for new files. The mirrored target is kept
separately (not flip-summed) because the student sees the mirror as its own input.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from core import paths as core_paths
from core.embedding import Embedder
from core.errors import ImageReadError

__all__ = ["StudentWithProjection", "TeacherTargets", "compute_teacher_targets", "teacher_cache_path"]

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
StopFn = Callable[[], bool]


@dataclass(frozen=True, slots=True)
class TeacherTargets:
    """Teacher embeddings aligned with a list of crops.

    Attributes:
        plain: ``(N, D) float32`` L2-normalised embedding of each crop.
        flipped: ``(N, D) float32`` L2-normalised embedding of each crop's mirror.
        valid: ``(N,) bool``: False where the crop has no target (unreadable).
        flipped_valid: ``(N,) bool``: False where the mirror's target was not computed (``flip=False``);
            a mirrored crop then falls back to the plain target.
        model_id: the teacher's ``model_id``.
    """

    plain: np.ndarray
    flipped: np.ndarray
    valid: np.ndarray
    flipped_valid: np.ndarray
    model_id: str

    @property
    def dim(self) -> int:
        """The teacher's embedding size ``D``."""
        return int(self.plain.shape[1])

    def select(self, indices: np.ndarray, mirrored: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Targets for crops ``indices`` shown mirrored where ``mirrored``; returns (targets, valid)."""
        use_flip = mirrored & self.flipped_valid[indices]
        targets = np.where(use_flip[:, None], self.flipped[indices], self.plain[indices])
        return targets, self.valid[indices]


def teacher_cache_path(model_id: str, cache_dir: str | Path | None = None) -> Path:
    """The SQLite file that caches ``model_id``'s targets (in the user cache unless ``cache_dir``)."""
    root = Path(cache_dir) if cache_dir else core_paths.cache_dir() / "teacher"
    root.mkdir(parents=True, exist_ok=True)
    return root / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', model_id)}.sqlite3"


def _open_cache(path: Path) -> sqlite3.Connection:
    # Several processes may fill one cache (e.g. a run and a prefetch): wait for the writer's lock.
    conn = sqlite3.connect(str(path), timeout=60.0)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS targets (sha256 TEXT PRIMARY KEY, model_id TEXT NOT NULL, "
        "dim INTEGER NOT NULL, plain BLOB NOT NULL, flipped BLOB)"
    )
    return conn


def _decode_bgr(data: bytes) -> np.ndarray | None:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        return None
    if image.shape[:2] != (112, 112):
        image = cv2.resize(image, (112, 112), interpolation=cv2.INTER_AREA)
    return image


def compute_teacher_targets(
    teacher: Embedder,
    crop_paths: Sequence[Path],
    *,
    flip: bool = True,
    compute: bool = True,
    cache_dir: str | Path | None = None,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    should_stop: StopFn | None = None,
) -> TeacherTargets:
    """Teacher targets for every crop, from the cache where possible; new ones are added to it.

    Each batch is committed as soon as it is computed, so an interrupted run keeps what it did.

    Args:
        teacher: the teacher embedder.
        crop_paths: aligned 112x112 crops.
        flip: also compute the mirrored crop's target (twice the teacher time); without it a mirrored
            training crop is matched to the plain target.
        compute: run the teacher on crops the cache lacks (False: they are left without a target).
        cache_dir: folder of the cache (default: ``<user cache>/teacher``).
        batch_size: crops per teacher call.
        progress: called with (done, total) after each batch.
        should_stop: polled between batches; when it returns True, :class:`InterruptedError` is raised.

    Raises:
        InterruptedError: ``should_stop`` asked to stop.
        ImageReadError: not one crop could be read.
    """
    n = len(crop_paths)
    dim = teacher.dim
    targets = _EmptyTargets(n, dim)
    db_path = teacher_cache_path(teacher.model_id, cache_dir)
    conn = _open_cache(db_path)
    try:
        digests = [_digest(Path(path)) for path in crop_paths]
        known = _cached(conn, teacher.model_id, dim, digests)
        todo: list[int] = []
        for i, digest in enumerate(digests):
            hit = known.get(digest) if digest else None
            if hit is not None:
                targets.fill_from_cache(i, hit)
            if compute and digest is not None and (hit is None or (flip and hit[1] is None)):
                todo.append(i)
        done = n - len(todo)
        log.info(
            "teacher %s: %d of %d crops cached (%s), %d to compute",
            teacher.model_id,
            int(targets.valid.sum()),
            n,
            db_path,
            len(todo),
        )
        if progress:
            progress(done, n)
        for start in range(0, len(todo), batch_size):
            if should_stop and should_stop():
                raise InterruptedError("stopped while computing teacher targets")
            idx = todo[start : start + batch_size]
            rows = _teach_batch(teacher, crop_paths, idx, targets, flip=flip)
            with conn:
                conn.executemany(
                    "INSERT OR REPLACE INTO targets VALUES (?, ?, ?, ?, ?)",
                    [(digests[i], teacher.model_id, dim, *row) for i, row in rows],
                )
            done += len(idx)
            if progress:
                progress(done, n)
    finally:
        conn.close()
    if not targets.valid.any():
        raise ImageReadError("the teacher could not read any of the crops")
    return TeacherTargets(
        targets.plain, targets.flipped, targets.valid, targets.flipped_valid, teacher.model_id
    )


class _EmptyTargets:
    """The arrays :class:`TeacherTargets` is made of, filled from the cache and the teacher."""

    def __init__(self, n: int, dim: int) -> None:
        self.plain = np.zeros((n, dim), np.float32)
        self.flipped = np.zeros((n, dim), np.float32)
        self.valid = np.zeros(n, bool)
        self.flipped_valid = np.zeros(n, bool)

    def fill_from_cache(self, i: int, hit: tuple[bytes, bytes | None]) -> None:
        self.plain[i] = np.frombuffer(hit[0], np.float32)
        self.valid[i] = True
        if hit[1] is not None:
            self.flipped[i] = np.frombuffer(hit[1], np.float32)
            self.flipped_valid[i] = True


def _digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _cached(
    conn: sqlite3.Connection, model_id: str, dim: int, digests: Sequence[str | None]
) -> dict[str, tuple[bytes, bytes | None]]:
    """The cached (plain, flipped) targets of the crops with these SHA-256 digests."""
    known: dict[str, tuple[bytes, bytes | None]] = {}
    wanted = sorted({d for d in digests if d})
    for start in range(0, len(wanted), 900):  # SQLite's default limit on bound parameters
        chunk = wanted[start : start + 900]
        rows = conn.execute(
            f"SELECT sha256, plain, flipped FROM targets WHERE model_id = ? AND dim = ? AND sha256 IN "
            f"({','.join('?' * len(chunk))})",
            (model_id, dim, *chunk),
        )
        known.update((row[0], (row[1], row[2])) for row in rows)
    return known


def _teach_batch(
    teacher: Embedder, crop_paths: Sequence[Path], idx: Sequence[int], targets: _EmptyTargets, *, flip: bool
) -> list[tuple[int, tuple[bytes, bytes | None]]]:
    """Run the teacher on the crops ``idx`` (and their mirrors); returns the rows to cache per crop."""
    crops: list[np.ndarray] = []
    ok: list[int] = []
    for i in idx:
        try:
            image = _decode_bgr(Path(crop_paths[i]).read_bytes())
        except OSError:
            image = None
        if image is None:
            log.warning("teacher: skipping unreadable crop %s", crop_paths[i])
            continue
        crops.append(image)
        ok.append(i)
    if not ok:
        return []
    batch = np.stack(crops)
    need_plain = [k for k, i in enumerate(ok) if not targets.valid[i]]
    inputs = [batch[need_plain]] if need_plain else []
    if flip:
        inputs.append(batch[:, :, ::-1])
    out = teacher.embed(np.concatenate(inputs))
    for j, k in enumerate(need_plain):
        targets.plain[ok[k]] = out[j]
        targets.valid[ok[k]] = True
    if flip:
        for k, i in enumerate(ok):
            targets.flipped[i] = out[len(need_plain) + k]
            targets.flipped_valid[i] = True
    return [
        (i, (targets.plain[i].tobytes(), targets.flipped[i].tobytes() if targets.flipped_valid[i] else None))
        for i in ok
    ]


class StudentWithProjection(nn.Module):
    """The student's embedding and a bias-free linear map of it to the teacher's dimension.

    The projection exists only for the distillation loss; the shipped network is the backbone alone, whose
    512-d embedding beat the projected one on LFW (TRAINING_NOTES).
    """

    def __init__(self, embedding_size: int, teacher_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(embedding_size, teacher_dim, bias=False)
        nn.init.xavier_uniform_(self.proj.weight)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """The embeddings projected to the teacher's dimension, in fp32."""
        return self.proj(embeddings.float())
