"""Guided enrolment from a camera: keep only sharp, large enough, non-duplicate shots of one face.

:class:`CaptureGuide` judges one frame at a time and keeps the good shots; it does no capture and no
GUI, so the app's enrolment dialog, the command line and the tests all share it.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from core.alignment import align_face
from core.types import Detection

__all__ = ["CaptureGuide", "GuideConfig", "Shot", "ShotVerdict", "Verdict", "sharpness"]

log = logging.getLogger(__name__)


def sharpness(image_bgr: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image: low for blurred or motion-smeared pictures.

    Args:
        image_bgr: ``(H, W, 3) uint8`` BGR or ``(H, W) uint8`` grey.
    """
    grey = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


class Verdict(enum.StrEnum):
    """The guide's verdict on a frame: accepted, or why the shot is not kept."""

    ACCEPTED = "accepted"
    NO_FACE = "no face"
    SEVERAL_FACES = "several faces"
    TOO_SMALL = "too small"
    BLURRED = "blurred"
    DUPLICATE = "duplicate"
    FULL = "enough shots"


@dataclass(frozen=True, slots=True)
class GuideConfig:
    """What makes a good enrolment shot.

    Attributes:
        min_face_px: shorter side of the face box, in pixels.
        min_sharpness: variance of the Laplacian of the aligned 112x112 face crop. Measured on the
            demo photos: sharp portraits give 400-1900, the same photos under a 9x9 box blur 85-140.
        max_similarity: a shot whose embedding is at least this similar (cosine) to a kept one is a
            near-duplicate and adds nothing to the gallery.
        target_shots: how many good shots the guide asks for.
    """

    min_face_px: int = 80
    min_sharpness: float = 200.0
    max_similarity: float = 0.92
    target_shots: int = 8


@dataclass(frozen=True, slots=True)
class Shot:
    """A kept shot: the whole frame (the gallery stores full photos), the face box, its embedding."""

    image: np.ndarray  # (H, W, 3) uint8 BGR
    box: tuple[float, float, float, float]
    embedding: np.ndarray  # (D,) float32, L2-normalised
    sharpness: float


@dataclass(frozen=True, slots=True)
class ShotVerdict:
    """The guide's answer for one frame, with the figures it was based on."""

    verdict: Verdict
    message: str
    face_px: float = 0.0
    sharpness: float = 0.0
    max_similarity: float = -1.0

    @property
    def accepted(self) -> bool:
        """Whether the shot was kept."""
        return self.verdict is Verdict.ACCEPTED


class CaptureGuide:
    """Judge frames and keep the good shots of one person.

    Args:
        embed: maps a batch of aligned ``(N, 112, 112, 3) uint8`` BGR crops to ``(N, D)`` L2-normalised
            embeddings (an :class:`core.embedding.Embedder`'s ``embed``).
        config: the thresholds.
    """

    def __init__(self, embed: Callable[[np.ndarray], np.ndarray], config: GuideConfig | None = None) -> None:
        self._embed = embed
        self.config = config or GuideConfig()
        self._shots: list[Shot] = []

    @property
    def shots(self) -> list[Shot]:
        """A copy of the shots kept so far."""
        return list(self._shots)

    @property
    def count(self) -> int:
        """How many shots are kept."""
        return len(self._shots)

    @property
    def done(self) -> bool:
        """Whether the guide has the ``target_shots`` it asks for."""
        return len(self._shots) >= self.config.target_shots

    def clear(self) -> None:
        """Forget every kept shot, to start over."""
        self._shots.clear()

    def assess(self, image_bgr: np.ndarray, detections: Sequence[Detection]) -> ShotVerdict:
        """Judge one frame; keep it when it is a good, new shot.

        Args:
            image_bgr: ``(H, W, 3) uint8`` BGR frame.
            detections: the faces a detector found in it.
        """
        cfg = self.config
        if self.done:
            return ShotVerdict(Verdict.FULL, f"{self.count} good shots: enough.")
        if not detections:
            return ShotVerdict(Verdict.NO_FACE, "No face in view.")
        if len(detections) > 1:
            return ShotVerdict(
                Verdict.SEVERAL_FACES, f"{len(detections)} faces in view: only one person, please."
            )
        det = detections[0]
        face_px = min(det.width, det.height)
        if face_px < cfg.min_face_px:
            return ShotVerdict(
                Verdict.TOO_SMALL,
                f"Come closer (face {face_px:.0f} px, needs {cfg.min_face_px} px).",
                face_px,
            )
        crop = align_face(image_bgr, det.landmarks)
        sharp = sharpness(crop)
        if sharp < cfg.min_sharpness:
            return ShotVerdict(
                Verdict.BLURRED,
                f"Hold still: the picture is blurred ({sharp:.0f} < {cfg.min_sharpness:.0f}).",
                face_px,
                sharp,
            )
        embedding = np.asarray(self._embed(crop[None]), dtype=np.float32).reshape(-1)
        best = max((float(np.dot(s.embedding, embedding)) for s in self._shots), default=-1.0)
        if best >= cfg.max_similarity:
            return ShotVerdict(
                Verdict.DUPLICATE,
                "Turn your head a little: this shot is like one already taken.",
                face_px,
                sharp,
                best,
            )
        box = tuple(float(v) for v in det.box[:4])
        self._shots.append(Shot(image_bgr.copy(), box, embedding, sharp))  # type: ignore[arg-type]
        log.debug("enrolment shot %d kept (sharpness %.0f, max similarity %.2f)", self.count, sharp, best)
        return ShotVerdict(
            Verdict.ACCEPTED, f"Good shot {self.count} of {cfg.target_shots}.", face_px, sharp, best
        )
