"""Managing a person's faces: the face picked in a group photo, reviewing a person, a face from the video."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import cv2
import numpy as np

from core.alignment import align_face
from core.face_choice import read_choice, sidecar_path, write_choice
from core.gallery import Gallery, PhotoStatus
from core.person_review import review_person


def _gallery(root: Path, models: tuple, cache: Path) -> Gallery:
    detector, embedder = models
    return Gallery(root, embedder, detector, cache_path=cache)


def _row(gallery: Gallery, path: Path) -> np.ndarray:
    snap = gallery.snapshot()
    return snap.matrix[snap.paths.index(path)]


def test_the_face_picked_in_a_group_photo_is_embedded_and_survives_a_rebuilt_cache(
    knn_gallery: Path, models: tuple, tmp_path: Path
) -> None:
    detector, embedder = models
    gallery = _gallery(knn_gallery, models, tmp_path / "cache.sqlite3")
    group = knn_gallery / "biden" / "biden2.jpg"  # three people
    assert [p.status for p in gallery.sync().problems] == [PhotoStatus.SEVERAL_FACES]

    image, faces = gallery.detect_photo(group)
    assert len(faces) == 3
    # Not the largest face: the pick must be what is embedded, not the "largest face" fallback.
    picked = faces[1]
    result = gallery.choose_face("biden", group, tuple(picked.box[:4]))
    assert result.ok and result.faces == 3, result
    side = sidecar_path(group)
    assert side.exists() and stat.S_IMODE(side.stat().st_mode) == 0o600
    expected = embedder.embed(align_face(image, picked.landmarks)[None], flip=True)[0]
    largest = embedder.embed(align_face(image, faces[0].landmarks)[None], flip=True)[0]
    assert float(_row(gallery, group) @ expected) > 0.99 > float(_row(gallery, group) @ largest)

    # Next start, with the cache gone: the folder alone says which face it is.
    rebuilt = _gallery(knn_gallery, models, tmp_path / "other-cache.sqlite3")
    report = rebuilt.sync()
    assert report.problems == () and report.embedded == 9  # the sidecar is not "not an image"
    assert float(_row(rebuilt, group) @ expected) > 0.99
    assert {p.name: p.embedded for p in rebuilt.people()}["biden"] == 2


def test_a_pick_that_no_face_matches_any_more_is_reported(
    knn_gallery: Path, models: tuple, tmp_path: Path
) -> None:
    group = knn_gallery / "biden" / "biden2.jpg"
    write_choice(group, (1000.0, 1000.0, 1100.0, 1100.0))  # a corner without a face
    report = _gallery(knn_gallery, models, tmp_path / "cache.sqlite3").sync()
    (problem,) = report.problems
    assert problem.status is PhotoStatus.CHOICE_LOST and "pick it again" in problem.message
    # A damaged choice is ignored, and the photo is again one with several faces (nothing crashes).
    sidecar_path(group).write_text("{not json")
    assert read_choice(group) is None
    report = _gallery(knn_gallery, models, tmp_path / "cache.sqlite3").sync()
    assert [p.status for p in report.problems] == [PhotoStatus.SEVERAL_FACES]


def test_review_flags_the_wrong_photo_in_a_folder(
    knn_gallery: Path, models: tuple, tmp_path: Path, demo_dir: Path
) -> None:
    shutil.copy(demo_dir / "obama-480p.jpg", knn_gallery / "obama" / "obama3.jpg")
    shutil.copy(demo_dir / "biden.jpg", knn_gallery / "obama" / "someone.jpg")
    cv2.imwrite(str(knn_gallery / "obama" / "wall.jpg"), np.full((200, 200, 3), 128, np.uint8))
    gallery = _gallery(knn_gallery, models, tmp_path / "cache.sqlite3")
    gallery.sync()
    review = review_person(gallery, "obama", threshold=0.36)
    by_name = {p.path.name: p for p in review.photos}
    assert [p.path.name for p in review.outliers] == ["someone.jpg"]
    assert "someone else" in by_name["someone.jpg"].reason
    assert by_name["someone.jpg"].similarity is not None and by_name["someone.jpg"].similarity < 0.36
    for name in ("obama.jpg", "obama2.jpg", "obama3.jpg"):
        good = by_name[name]
        assert good.used and good.similarity is not None and good.similarity > 0.5
        assert good.face_jpeg[:2] == b"\xff\xd8" and good.face_px > 100 and good.sharpness > 200
    # A photo with no face is listed with its reason, never counted as one of the person's photos.
    assert by_name["wall.jpg"].status is PhotoStatus.NO_FACE and by_name["wall.jpg"].similarity is None
    assert review.used == 4
    assert {p.name: p.embedded for p in gallery.people()}["obama"] == 4


def test_a_face_from_the_video_is_kept_only_when_large_and_sharp(
    knn_gallery: Path, models: tuple, tmp_path: Path, demo_dir: Path
) -> None:
    gallery = _gallery(knn_gallery, models, tmp_path / "cache.sqlite3")
    gallery.sync()
    frame = cv2.imread(str(demo_dir / "two_people.jpg"))
    crop = frame[0:300, 180:440]  # the left face, with a margin
    small = cv2.resize(crop, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA)
    blurred = cv2.blur(crop, (25, 25))
    before = sorted(p.name for p in (knn_gallery / "obama").iterdir())

    too_small = gallery.add_face_image("obama", small)
    assert too_small.status in (PhotoStatus.LOW_QUALITY, PhotoStatus.NO_FACE)
    assert "too small" in too_small.message or "No face" in too_small.message
    too_blurred = gallery.add_face_image("obama", blurred)
    assert too_blurred.status is PhotoStatus.LOW_QUALITY and "blurred" in too_blurred.message
    assert sorted(p.name for p in (knn_gallery / "obama").iterdir()) == before  # nothing saved

    added = gallery.add_face_image("New Person", crop)
    assert added.ok, added.message
    assert added.path.parent == knn_gallery / "New Person" and added.path.exists()
    assert {p.name: p.embedded for p in gallery.people()}["New Person"] == 1


def test_removing_one_photo_moves_it_and_its_pick_to_the_backup(
    knn_gallery: Path, models: tuple, tmp_path: Path
) -> None:
    gallery = _gallery(knn_gallery, models, tmp_path / "cache.sqlite3")
    gallery.sync()
    group = knn_gallery / "biden" / "biden2.jpg"
    _image, faces = gallery.detect_photo(group)
    assert gallery.choose_face("biden", group, tuple(faces[0].box[:4])).ok
    data = group.read_bytes()
    moved = gallery.remove_photo(group, tmp_path / "trash")
    assert moved.read_bytes() == data and sidecar_path(moved).exists()
    assert not group.exists() and not sidecar_path(group).exists()
    assert {p.name: p.embedded for p in gallery.people()}["biden"] == 1
    assert group not in gallery.snapshot().paths
