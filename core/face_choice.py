"""Which face of a group photo is the person's: a small sidecar file next to the photo.

A photo that shows several faces is used only when the user picked one of them. The choice lives in
``<photo>.face.json`` beside the photo (``group.jpg.face.json``), so that it travels with the photo in a
file manager, survives a restart and a rebuilt embedding cache, and is dropped with the photo. The file
holds the chosen face box in the photo's pixels; at every sync the detection that overlaps it most is the
one embedded, so a newer detector (slightly different boxes) keeps the same face.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core._atomic import atomic_write_text
from core._perms import private_file
from core.types import Detection

__all__ = [
    "MIN_OVERLAP",
    "SIDECAR_SUFFIX",
    "FaceChoice",
    "box_overlap",
    "is_sidecar",
    "pick_detection",
    "read_choice",
    "remove_choice",
    "sidecar_path",
    "write_choice",
]

log = logging.getLogger(__name__)

SIDECAR_SUFFIX = ".face.json"
# A detection must cover the chosen box at least this much (intersection over union) to be that face:
# two neighbours in a group photo overlap far less, the same face under two detectors far more.
MIN_OVERLAP = 0.4
_VERSION = 1


@dataclass(frozen=True, slots=True)
class FaceChoice:
    """The face the user picked in a photo.

    Attributes:
        box: ``(x1, y1, x2, y2)`` pixels of the photo, as the detector drew it when the user chose.
    """

    box: tuple[float, float, float, float]

    def key(self) -> str:
        """A short text that tells this choice from another one (part of the embedding cache key)."""
        return "face:" + ",".join(str(round(v)) for v in self.box)


def sidecar_path(photo: Path) -> Path:
    """Where the choice for ``photo`` is kept: ``<photo>.face.json`` in the same folder."""
    return photo.with_name(photo.name + SIDECAR_SUFFIX)


def is_sidecar(path: Path) -> bool:
    """Whether ``path`` is a face-choice file (never a photo, never "not an image")."""
    return path.name.lower().endswith(SIDECAR_SUFFIX)


def read_choice(photo: Path) -> FaceChoice | None:
    """The choice stored for ``photo``; None when there is none or the file is not a valid choice.

    A damaged file is logged and ignored: the photo is then treated as one with several faces again,
    and the user can pick anew (which rewrites the file).
    """
    path = sidecar_path(photo)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read the face choice %s: %s", path, exc.strerror or exc)
        return None
    try:
        data = json.loads(text)
        box = tuple(float(v) for v in data["box"])
        if len(box) != 4 or not all(np.isfinite(box)) or box[2] <= box[0] or box[3] <= box[1]:
            raise ValueError(f"not a box: {data['box']!r}")
    except (ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the face choice %s: %s", path, exc)
        return None
    return FaceChoice(box)  # type: ignore[arg-type]


def write_choice(photo: Path, box: Sequence[float]) -> Path:
    """Record ``box`` as the chosen face of ``photo`` (atomically, private to the user); returns the file.

    Raises:
        OSError: the file cannot be written.
        ValueError: ``box`` is not four finite numbers with x2 > x1 and y2 > y1.
    """
    values = [float(v) for v in list(box)[:4]]
    if len(values) != 4 or not all(np.isfinite(values)) or values[2] <= values[0] or values[3] <= values[1]:
        raise ValueError(f"a face box is x1, y1, x2, y2 with x2 > x1 and y2 > y1, not {list(box)!r}")
    path = sidecar_path(photo)
    text = json.dumps({"version": _VERSION, "photo": photo.name, "box": [round(v, 1) for v in values]})
    atomic_write_text(path, text + "\n")
    private_file(path)
    return path


def remove_choice(photo: Path) -> None:
    """Forget the choice for ``photo`` (no error when there is none)."""
    sidecar_path(photo).unlink(missing_ok=True)


def box_overlap(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x1, y1, x2, y2)`` boxes, in [0, 1]."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def pick_detection(detections: Sequence[Detection], choice: FaceChoice) -> Detection | None:
    """The detection that is the chosen face, or None when no detection covers it enough."""
    best, best_overlap = None, MIN_OVERLAP
    for det in detections:
        overlap = box_overlap([float(v) for v in det.box[:4]], choice.box)
        if overlap >= best_overlap:
            best, best_overlap = det, overlap
    return best
