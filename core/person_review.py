"""One person's photos reviewed: each photo's face, its quality, and how well it agrees with the others.

A wrong photo in a person's folder (a look-alike, a neighbour in a group photo, someone else's picture
dropped in the wrong folder) is the commonest gallery error, and it silently makes strangers match. The
model itself says which photo it is: a photo whose face is far less similar to the person's other photos
than they are to each other. :func:`review_person` measures, for every photo, the mean cosine similarity
of its embedding to the person's other photos, and flags it when that is below the recognition
threshold, or far below the person's median.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from core.alignment import align_face
from core.enrollment import sharpness
from core.errors import GalleryError
from core.events import encode_thumbnail
from core.gallery import Gallery, PhotoFace, PhotoStatus

__all__ = ["MEDIAN_GAP", "PersonReview", "PhotoReview", "face_jpeg", "review_person"]

log = logging.getLogger(__name__)

# A photo this far (cosine) below the person's median agreement is flagged even above the threshold:
# SFace gives 0.55-0.75 between two good photos of one person, 0.0-0.3 between two people.
MEDIAN_GAP = 0.2
# Longer side of a face crop shown for a photo, in pixels.
FACE_CROP_PX = 128


@dataclass(frozen=True, slots=True)
class PhotoReview:
    """One photo of a person, as the review sees it.

    Attributes:
        path: the photo file.
        status: ok, or why the photo is not used (no face, several faces, unreadable...).
        message: a sentence for the user.
        face_jpeg: a JPEG of the face in use (or of the largest face of a photo not used), or empty.
        faces: faces found in the photo (-1 when unreadable).
        face_px: the shorter side of the face box, in pixels of the photo (0 without a face).
        sharpness: variance of the Laplacian of the aligned 112x112 face (0 without a face).
        detection_score: the detector's confidence in the face (0 without a face).
        similarity: mean cosine similarity to the person's other usable photos; None when the photo is
            not used or is the person's only usable photo.
        outlier: the photo disagrees with the others (see ``reason``).
        reason: why it is flagged, for the user; "" when it is not.
    """

    path: Path
    status: PhotoStatus
    message: str
    face_jpeg: bytes = b""
    faces: int = -1
    face_px: float = 0.0
    sharpness: float = 0.0
    detection_score: float = 0.0
    similarity: float | None = None
    outlier: bool = False
    reason: str = ""

    @property
    def used(self) -> bool:
        """Whether the photo's face is in use for recognition."""
        return self.status is PhotoStatus.OK


@dataclass(frozen=True, slots=True)
class PersonReview:
    """A person's photos, reviewed.

    Attributes:
        name: the person.
        photos: one review per photo file, in file-name order.
        threshold: the recognition threshold the similarities were judged against.
        median: the median of the photos' similarities (None with fewer than two usable photos).
        cancelled: the review stopped early; ``photos`` holds what was reviewed.
    """

    name: str
    photos: tuple[PhotoReview, ...]
    threshold: float
    median: float | None = None
    cancelled: bool = False

    @property
    def used(self) -> int:
        """How many photos are in use."""
        return sum(1 for p in self.photos if p.used)

    @property
    def outliers(self) -> tuple[PhotoReview, ...]:
        """The photos flagged as disagreeing with the others."""
        return tuple(p for p in self.photos if p.outlier)


def face_jpeg(image_bgr: np.ndarray, box: tuple[float, ...] | np.ndarray, size: int = FACE_CROP_PX) -> bytes:
    """A small JPEG of one face of a photo (the box with a margin), longer side at most ``size``."""
    return encode_thumbnail(image_bgr, [float(v) for v in list(box)[:4]], size)


def _review_photo(face: PhotoFace) -> tuple[PhotoReview, np.ndarray | None]:
    det = face.detection
    message = face.message
    if det is None or face.image is None:
        return PhotoReview(face.path, face.status, message, faces=face.faces), None
    crop = align_face(face.image, det.landmarks)
    review = PhotoReview(
        face.path,
        face.status,
        message,
        face_jpeg=face_jpeg(face.image, det.box),
        faces=face.faces,
        face_px=float(min(det.width, det.height)),
        sharpness=sharpness(crop),
        detection_score=float(det.score),
    )
    return review, (face.vector if face.status is PhotoStatus.OK else None)


def _judge(reviews: list[PhotoReview], vectors: list[np.ndarray | None], threshold: float) -> float | None:
    """Fill in each usable photo's agreement with the others and flag outliers; returns the median."""
    used = [i for i, v in enumerate(vectors) if v is not None]
    if len(used) < 2:
        return None
    matrix = np.stack([v for v in vectors if v is not None]).astype(np.float32)
    sims = matrix @ matrix.T
    np.fill_diagonal(sims, 0.0)
    means = sims.sum(axis=1) / (len(used) - 1)
    median = float(np.median(means))
    for row, i in enumerate(used):
        mean = float(means[row])
        reason = ""
        if mean < threshold:
            reason = (
                f"Its face matches the person's other photos only at {mean:.2f}, below the recognition "
                f"threshold {threshold:.2f}: is it someone else?"
            )
        elif len(used) >= 3 and mean < median - MEDIAN_GAP:
            reason = (
                f"Its face matches the person's other photos at {mean:.2f}, far below their usual "
                f"{median:.2f}: is it someone else?"
            )
        reviews[i] = replace(reviews[i], similarity=mean, outlier=bool(reason), reason=reason)
    return median


def review_person(
    gallery: Gallery,
    name: str,
    threshold: float,
    progress: Callable[[int, int, str], None] | None = None,
    cancel: threading.Event | None = None,
) -> PersonReview:
    """Review every photo of ``name``: its face, quality, and agreement with the other photos.

    Runs the detector on each photo (the embeddings come from the gallery's cache): call it on the thread
    that owns the gallery.

    Raises:
        GalleryError: there is no such person.
    """
    person = next((p for p in gallery.people() if p.name.casefold() == name.casefold()), None)
    if person is None:
        raise GalleryError(f"there is no person {name!r} in the gallery {gallery.root}")
    reviews: list[PhotoReview] = []
    vectors: list[np.ndarray | None] = []
    cancelled = False
    for done, path in enumerate(person.photos, start=1):
        if cancel is not None and cancel.is_set():
            cancelled = True
            break
        review, vector = _review_photo(gallery.inspect_photo(path))
        reviews.append(review)
        vectors.append(vector)
        if progress is not None:
            progress(done, len(person.photos), path.name)
    median = _judge(reviews, vectors, threshold)
    return PersonReview(person.name, tuple(reviews), threshold, median, cancelled)
