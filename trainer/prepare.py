"""Prepare a training set: detect, align and write 112x112 crops of a folder of photos."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["align_folder"]


def align_folder(
    source: Path,
    target: Path,
    *,
    detector_name: str = "yunet",
    score_threshold: float = 0.6,
    min_face_px: int = 32,
    all_faces: bool = False,
) -> dict[str, Any]:
    """Detect, align and write 112x112 crops of every photo under ``source`` into ``target``.

    ``source/<identity>/<photo>`` becomes ``target/<identity>/<photo stem>.jpg`` (``_<k>`` added per extra
    face with ``all_faces``); loose photos stay loose. Existing crops are kept (the run can be repeated).

    Returns:
        Counts: photos, crops written, skipped (already there), no face, unreadable; and the failures.

    Raises:
        FileNotFoundError: ``source`` is not a folder.
    """
    import cv2

    from core._image import is_image_name, read_image
    from core.alignment import align_face
    from core.detection import create_detector
    from core.errors import ImageReadError

    source, target = Path(source), Path(target)
    if not source.is_dir():
        raise FileNotFoundError(f"photo folder not found: {source}")
    detector = create_detector(detector_name, score_threshold=score_threshold)
    photos = sorted(p for p in source.rglob("*") if p.is_file() and is_image_name(p))
    counts = {"photos": len(photos), "written": 0, "skipped": 0, "no_face": 0, "unreadable": 0}
    failures: list[str] = []
    for photo in photos:
        rel = photo.relative_to(source)
        out_dir = target / rel.parent
        first = out_dir / f"{photo.stem}.jpg"
        if first.exists():
            counts["skipped"] += 1
            continue
        try:
            image = read_image(photo)
        except ImageReadError as exc:
            counts["unreadable"] += 1
            failures.append(f"{rel}: {exc}")
            continue
        faces = [d for d in detector.detect(image) if d.width >= min_face_px]
        if not faces:
            counts["no_face"] += 1
            failures.append(f"{rel}: no face of at least {min_face_px} px")
            continue
        faces.sort(key=lambda d: d.width * d.height, reverse=True)
        out_dir.mkdir(parents=True, exist_ok=True)
        for k, face in enumerate(faces if all_faces else faces[:1]):
            crop = align_face(image, face.landmarks, 112)
            name = first if k == 0 else out_dir / f"{photo.stem}_{k}.jpg"
            ok, data = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if ok:
                data.tofile(str(name))
                counts["written"] += 1
    return {**counts, "failures": failures}
