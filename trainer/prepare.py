"""Prepare a training set: detect, align and write 112x112 crops of a folder of photos.

:func:`align_photos` is the one implementation, shared by ``ghostface align`` (through :func:`align_folder`)
and the trainer tab's "Align photos…" step: it takes the engine's own detector, reports every photo's
outcome (aligned, no face, several faces, unreadable), can be cancelled between photos, and calls back with
its progress, so the training crops look exactly like the faces the app embeds.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["AlignReport", "AlignStatus", "AlignedPhoto", "align_folder", "align_photos", "list_photos"]

#: What to do with a photo that shows several faces: skip it (which face is the person is unknown), keep
#: its largest face, or keep every face.
SeveralFaces = Literal["skip", "largest", "all"]

# The gallery's mark for "this group photo enrols its largest face" (core.gallery): honoured here too.
_LARGEST_MARK = ".largest"


class AlignStatus(enum.Enum):
    """The outcome of one photo."""

    ALIGNED = "aligned"
    NO_FACE = "no face"
    SEVERAL_FACES = "several faces"
    UNREADABLE = "unreadable"


@dataclass(frozen=True, slots=True)
class AlignedPhoto:
    """One photo's outcome.

    Attributes:
        photo: the photo's path relative to the source folder.
        status: aligned, no face, several faces or unreadable.
        detail: a one-line explanation for the user.
        written: crops written by this run (0 when the crop was already there, or on failure).
    """

    photo: str
    status: AlignStatus
    detail: str
    written: int = 0


@dataclass(frozen=True, slots=True)
class AlignReport:
    """What :func:`align_photos` did.

    Attributes:
        source: the photo folder.
        target: the crop folder (the training data).
        photos: one outcome per photo handled, in order.
        total: photos found (more than ``len(photos)`` when cancelled).
        cancelled: the run was stopped before the last photo.
        removed: crops removed because their photo is gone (with ``prune``).
    """

    source: Path
    target: Path
    photos: tuple[AlignedPhoto, ...]
    total: int
    cancelled: bool = False
    removed: int = 0

    def count(self, status: AlignStatus) -> int:
        """How many photos ended with ``status``."""
        return sum(1 for p in self.photos if p.status is status)

    @property
    def written(self) -> int:
        """Crops written by this run."""
        return sum(p.written for p in self.photos)

    @property
    def aligned(self) -> int:
        """Photos that have a crop in the target (written now or kept from an earlier run)."""
        return self.count(AlignStatus.ALIGNED)

    def summary(self) -> str:
        """One line for the user, e.g. "5 photos: 3 aligned, 1 no face, 0 several faces, 1 unreadable"."""
        counts = ", ".join(f"{self.count(s)} {s.value}" for s in AlignStatus)
        done = f"{len(self.photos)} of {self.total} photos" if self.cancelled else f"{self.total} photos"
        removed = ""
        if self.removed:
            crops = "1 crop whose photo is" if self.removed == 1 else f"{self.removed} crops whose photos are"
            removed = f"; deleted {crops} gone"
        return f"{done}: {counts}{removed}" + (" (cancelled)" if self.cancelled else "")


def list_photos(source: Path) -> list[Path]:
    """The photos under ``source``, sorted; hidden files and folders (the gallery's own) are left out."""
    from core._image import is_image_name

    found = []
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_file() and is_image_name(path):
            found.append(path)
    return sorted(found)


def _write_crop(path: Path, crop: Any) -> bool:
    import cv2

    ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if ok:
        data.tofile(str(path))
    return bool(ok)


def _align_one(
    photo: Path, rel: Path, target: Path, detector: Any, min_face_px: int, several: SeveralFaces
) -> AlignedPhoto:
    from core._image import read_image
    from core.alignment import align_face
    from core.errors import ImageReadError

    out_dir = target / rel.parent
    first = out_dir / f"{photo.stem}.jpg"
    # A crop older than its photo belongs to a photo that was replaced since: align it again.
    if first.exists() and first.stat().st_mtime >= photo.stat().st_mtime:
        return AlignedPhoto(str(rel), AlignStatus.ALIGNED, "aligned earlier (crop kept)")
    try:
        image = read_image(photo)
    except ImageReadError as exc:
        # The report names the photo already: keep the reason only.
        return AlignedPhoto(str(rel), AlignStatus.UNREADABLE, str(exc).replace(f"{photo} ", "", 1))
    faces = [d for d in detector.detect(image) if d.width >= min_face_px]
    if not faces:
        return AlignedPhoto(str(rel), AlignStatus.NO_FACE, f"no face of at least {min_face_px} px")
    if len(faces) > 1 and several == "skip" and not photo.stem.endswith(_LARGEST_MARK):
        return AlignedPhoto(
            str(rel),
            AlignStatus.SEVERAL_FACES,
            f"{len(faces)} faces: which one is the person is unclear, so the photo is left out",
        )
    faces.sort(key=lambda d: d.width * d.height, reverse=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for k, face in enumerate(faces if several == "all" else faces[:1]):
        name = first if k == 0 else out_dir / f"{photo.stem}_{k}.jpg"
        written += _write_crop(name, align_face(image, face.landmarks, 112))
    detail = f"{written} crops" if written > 1 else ("largest of several faces" if len(faces) > 1 else "")
    return AlignedPhoto(str(rel), AlignStatus.ALIGNED, detail, written)


def _prune(target: Path, photos: list[Path], source: Path) -> int:
    """Delete the crops in ``target`` whose photo is no longer in ``source`` (nor aligns any more)."""
    keep = {(p.relative_to(source).parent / p.stem).as_posix() for p in photos}
    removed = 0
    for crop in target.rglob("*.jpg") if target.is_dir() else ():
        key = (crop.relative_to(target).parent / crop.stem).as_posix()
        base = key.rsplit("_", 1)[0] if key.rsplit("_", 1)[-1].isdigit() else key
        if key not in keep and base not in keep:
            crop.unlink()
            removed += 1
    return removed


def align_photos(
    source: Path,
    target: Path,
    detector: Any,
    *,
    min_face_px: int = 32,
    several: SeveralFaces = "skip",
    prune: bool = False,
    progress: Callable[[int, int, AlignedPhoto], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> AlignReport:
    """Detect, align and write 112x112 crops of every photo under ``source`` into ``target``.

    ``source/<identity>/<photo>`` becomes ``target/<identity>/<photo stem>.jpg`` (``_<k>`` added per extra
    face with ``several="all"``); loose photos stay loose. A crop already in ``target`` is kept, so a run
    can be repeated (after adding photos) or continued after a cancel.

    Args:
        source: the photo folder (one sub-folder per person, like the gallery).
        target: where the crops go.
        detector: a :class:`core.detection.Detector` (the engine's, from :func:`core.engine.build_detector`).
        min_face_px: faces narrower than this are ignored.
        several: a photo with several faces is skipped, or gives its largest face, or every face. A photo
            the gallery marked ``<name>.largest.<ext>`` always gives its largest.
        progress: called after each photo with (photos done, photos in all, its outcome).
        should_stop: polled before each photo; True ends the run (the report says it was cancelled).
        prune: ``target`` belongs to ``source`` alone: delete the crops of photos that were removed from it
            (a wrong photo taken out of the gallery must leave the training data too), and the crop of a
            photo that now fails (replaced by one with several faces, say).

    Raises:
        FileNotFoundError: ``source`` is not a folder.
    """
    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise FileNotFoundError(f"photo folder not found: {source}")
    photos = list_photos(source)
    done: list[AlignedPhoto] = []
    for photo in photos:
        if should_stop is not None and should_stop():
            return AlignReport(source, target, tuple(done), len(photos), cancelled=True)
        outcome = _align_one(photo, photo.relative_to(source), target, detector, min_face_px, several)
        done.append(outcome)
        if progress is not None:
            progress(len(done), len(photos), outcome)
    removed = 0
    if prune:
        aligned = [p for p, o in zip(photos, done, strict=True) if o.status is AlignStatus.ALIGNED]
        removed = _prune(target, aligned, source)
    return AlignReport(source, target, tuple(done), len(photos), removed=removed)


def align_folder(
    source: Path,
    target: Path,
    *,
    detector_name: str = "yunet",
    score_threshold: float = 0.6,
    min_face_px: int = 32,
    all_faces: bool = False,
) -> dict[str, Any]:
    """``ghostface align``: :func:`align_photos` with a detector by name, the largest face of each photo.

    Returns:
        Counts: photos, crops written, skipped (already there), no face, unreadable; and the failures.

    Raises:
        FileNotFoundError: ``source`` is not a folder.
    """
    from core.detection import create_detector

    if not Path(source).is_dir():
        raise FileNotFoundError(f"photo folder not found: {source}")
    detector = create_detector(detector_name, score_threshold=score_threshold)
    report = align_photos(
        source, target, detector, min_face_px=min_face_px, several="all" if all_faces else "largest"
    )
    failures = [f"{p.photo}: {p.detail}" for p in report.photos if p.status is not AlignStatus.ALIGNED]
    skipped = sum(1 for p in report.photos if p.status is AlignStatus.ALIGNED and not p.written)
    return {
        "photos": report.total,
        "written": report.written,
        "skipped": skipped,
        "no_face": report.count(AlignStatus.NO_FACE),
        "unreadable": report.count(AlignStatus.UNREADABLE),
        "failures": failures,
    }
