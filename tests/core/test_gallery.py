"""The gallery: folders are the truth, the SQLite cache re-embeds only what changed and survives damage."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.embedding import create_embedder
from core.errors import GalleryError, InvalidPersonName
from core.gallery import Gallery, PhotoStatus, validate_person_name
from core.matching import Matcher


def _gallery(root: Path, models: tuple, cache: Path | None = None, **kwargs: object) -> Gallery:
    detector, embedder = models
    return Gallery(root, embedder, detector, cache_path=cache, **kwargs)


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.rglob("*"))
    }


def _no_face_photo(path: Path) -> Path:
    gradient = np.tile(np.linspace(0, 255, 320, dtype=np.uint8), (240, 1))
    cv2.imwrite(str(path), cv2.merge([gradient, gradient[::-1], np.full_like(gradient, 90)]))
    return path


def test_sync_embeds_each_photo_once_and_reports_group_photos(knn_gallery: Path, models: tuple) -> None:
    gallery = _gallery(knn_gallery, models)
    report = gallery.sync()
    assert report.people == 5 and report.photos == 9
    assert report.embedded == 9 and report.cached == 0
    # biden2.jpg shows three people: reported and skipped, not silently enrolled.
    assert [(p.path.name, p.status) for p in report.problems] == [("biden2.jpg", PhotoStatus.SEVERAL_FACES)]
    assert report.problems[0].faces >= 2 and "several faces" in report.problems[0].message
    matrix, labels = gallery.embeddings()
    assert matrix.shape == (8, 128) and matrix.dtype == np.float32
    assert sorted(set(labels)) == ["alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"]
    assert {p.name: p.embedded for p in gallery.people()}["biden"] == 1

    again = gallery.sync()
    assert again.embedded == 0 and again.cached == 9
    assert np.array_equal(gallery.embeddings()[0], matrix)

    # A new gallery object on the same cache (the next start of the program) embeds nothing either.
    assert _gallery(knn_gallery, models).sync().embedded == 0


def test_changing_one_photo_re_embeds_only_that_photo(
    knn_gallery: Path, models: tuple, demo_dir: Path
) -> None:
    gallery = _gallery(knn_gallery, models)
    gallery.sync()
    shutil.copyfile(demo_dir / "obama-480p.jpg", knn_gallery / "obama" / "obama2.jpg")
    report = gallery.sync()
    assert report.embedded == 1 and report.cached == 8


def test_the_gallery_embeddings_recognise_new_photos(
    knn_gallery: Path, models: tuple, demo_dir: Path
) -> None:
    from core._image import read_image
    from core.evaluation import embed_face

    gallery = _gallery(knn_gallery, models)
    gallery.sync()
    matcher = Matcher(0.36, 0.05)
    matcher.set_gallery(*gallery.embeddings())
    detector, embedder = models
    probes = {
        "obama": demo_dir / "knn_examples" / "test" / "obama1.jpg",
        "alex_lacamoire": demo_dir / "knn_examples" / "test" / "alex_lacamoire1.jpg",
    }
    for person, photo in probes.items():
        vector = embed_face(read_image(photo), detector, embedder)
        assert matcher.match(vector[None])[0].person == person
    stranger = embed_face(read_image(demo_dir / "lin-manuel-miranda.png"), detector, embedder)
    assert matcher.match(stranger[None])[0].person is None


def test_sync_never_writes_into_the_gallery_folder(knn_gallery: Path, models: tuple, tmp_path: Path) -> None:
    before = _tree(knn_gallery)
    cache = tmp_path / "elsewhere" / "cache.sqlite3"
    gallery = _gallery(knn_gallery, models, cache)
    gallery.sync()
    gallery.sync()
    gallery.people()
    assert _tree(knn_gallery) == before
    assert cache.exists()


def test_the_default_cache_lives_in_the_user_cache_folder(
    knn_gallery: Path, models: tuple, _fresh_home: Path
) -> None:
    gallery = _gallery(knn_gallery, models)
    gallery.sync()
    assert gallery.cache_path.is_relative_to(_fresh_home) and gallery.cache_path.exists()
    assert not any(p.suffix.startswith(".sqlite") for p in knn_gallery.rglob("*"))


def test_a_corrupt_cache_is_moved_aside_and_rebuilt(
    knn_gallery: Path, models: tuple, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = tmp_path / "cache.sqlite3"
    first = _gallery(knn_gallery, models, cache)
    first.sync()
    first.close()
    garbage = b"this is not a database\x00" * 300
    cache.write_bytes(garbage)
    for extra in (Path(f"{cache}-wal"), Path(f"{cache}-shm")):
        extra.unlink(missing_ok=True)
    with caplog.at_level(logging.WARNING, logger="core.gallery"):
        gallery = _gallery(knn_gallery, models, cache)
    assert "corrupt" in caplog.text
    moved = [p for p in tmp_path.iterdir() if ".corrupt-" in p.name]
    assert moved and moved[0].read_bytes() == garbage  # kept for inspection, not deleted
    report = gallery.sync()
    assert report.usable == 8 and report.embedded == 9
    assert gallery.sync().embedded == 0


def test_person_names_that_are_not_safe_folder_names_are_refused(tmp_path: Path, models: tuple) -> None:
    gallery = _gallery(tmp_path / "g", models)
    bad = [
        "../x",
        "",
        "   ",
        ".",
        "..",
        ".hidden",
        "a/b",
        "a\\b",
        "bell\x07",
        "CON",
        "lpt1.txt",
        "x" * 101,
        "what?",
    ]
    for name in bad:
        with pytest.raises(InvalidPersonName):
            gallery.add_person(name)
    assert list((tmp_path / "g").iterdir()) == []
    assert not (tmp_path / "x").exists()
    with pytest.raises(InvalidPersonName, match="'/'"):
        validate_person_name("../x")
    assert validate_person_name("  Zoë Ō'Brien-山田 ") == "Zoë Ō'Brien-山田"


def test_add_photos_copies_good_photos_and_reports_bad_ones(
    tmp_path: Path, models: tuple, demo_dir: Path
) -> None:
    gallery = _gallery(tmp_path / "g", models)
    inbox = tmp_path / "in box ü"
    inbox.mkdir()
    good = shutil.copy(demo_dir / "obama.jpg", inbox / "Обама.jpg")
    group = shutil.copy(demo_dir / "two_people.jpg", inbox / "group.jpg")
    not_image = inbox / "notes.jpg"
    not_image.write_bytes(b"this is text, not a JPEG")
    text = inbox / "readme.txt"
    text.write_text("hello")
    empty = _no_face_photo(inbox / "wall.png")
    missing = inbox / "gone.jpg"
    seen: list[tuple[int, int, str]] = []
    report = gallery.add_photos(
        "Barack Obama",
        [good, group, not_image, text, empty, missing, good],
        progress=lambda d, t, item: seen.append((d, t, item)),
    )
    statuses = [r.status for r in report.results]
    assert statuses == [
        PhotoStatus.OK,
        PhotoStatus.SEVERAL_FACES,
        PhotoStatus.NOT_IMAGE,
        PhotoStatus.NOT_IMAGE,
        PhotoStatus.NO_FACE,
        PhotoStatus.UNREADABLE,
        PhotoStatus.DUPLICATE,
    ]
    assert report.added == 1 and len(report.problems) == 6
    assert all(r.message for r in report.results)
    assert [d for d, _, _ in seen] == list(range(1, 8))
    folder = tmp_path / "g" / "Barack Obama"
    assert [p.name for p in folder.iterdir()] == ["Обама.jpg"]  # only the good photo was copied
    assert (folder / "Обама.jpg").read_bytes() == Path(good).read_bytes()
    assert Path(good).exists() and Path(group).exists()  # the originals are untouched
    _, labels = gallery.embeddings()
    assert labels == ["Barack Obama"]


def test_allow_largest_enrols_a_group_photo_and_a_later_sync_keeps_it(
    tmp_path: Path, models: tuple, demo_dir: Path
) -> None:
    gallery = _gallery(tmp_path / "g", models)
    report = gallery.add_photos("Someone", [demo_dir / "two_people.jpg"], allow_largest=True)
    assert report.added == 1 and report.results[0].faces >= 2
    copied = report.results[0].path
    assert copied.name == "two_people.largest.jpg"
    # The choice is recorded in the folder itself: a fresh cache still enrols the photo.
    fresh = _gallery(tmp_path / "g", models, tmp_path / "fresh.sqlite3")
    sync = fresh.sync()
    assert sync.usable == 1 and sync.problems == ()


def test_add_photos_to_a_new_person_with_a_non_ascii_name(
    tmp_path: Path, models: tuple, demo_dir: Path
) -> None:
    gallery = _gallery(tmp_path / "g", models)
    name = "Zoë 山田"
    report = gallery.add_photos(name, [demo_dir / "obama.jpg", demo_dir / "obama2.jpg"])
    assert report.added == 2
    people = gallery.people()
    assert [p.name for p in people] == [name] and len(people[0].photos) == 2
    assert people[0].thumbnail == people[0].photos[0]
    # Same file name twice: the second copy gets a unique name, nothing is overwritten.
    again = gallery.add_photos(name, [demo_dir / "knn_examples" / "train" / "obama" / "obama.jpg"])
    assert again.results[0].status in {PhotoStatus.OK, PhotoStatus.DUPLICATE}
    assert len(list((tmp_path / "g" / name).iterdir())) == 2 + again.added


def test_add_image_from_the_camera(tmp_path: Path, models: tuple, demo_dir: Path) -> None:
    gallery = _gallery(tmp_path / "g", models)
    frame = cv2.imread(str(demo_dir / "obama.jpg"))
    result = gallery.add_image("Barack Obama", frame)
    assert result.ok and result.path.exists() and result.path.suffix == ".jpg"
    assert gallery.embeddings()[1] == ["Barack Obama"]
    blank = gallery.add_image("Barack Obama", cv2.imread(str(_no_face_photo(tmp_path / "w.png"))))
    assert blank.status is PhotoStatus.NO_FACE
    assert len(list((tmp_path / "g" / "Barack Obama").iterdir())) == 1


def test_rename_keeps_the_embeddings_and_delete_moves_to_a_backup(
    knn_gallery: Path, models: tuple, tmp_path: Path
) -> None:
    gallery = _gallery(knn_gallery, models)
    gallery.sync()
    gallery.rename_person("obama", "Barack Obama")
    assert "Barack Obama" in gallery.embeddings()[1] and "obama" not in gallery.embeddings()[1]
    assert gallery.sync().embedded == 0  # renaming costs no embedding
    with pytest.raises(GalleryError, match="already"):
        gallery.rename_person("biden", "barack obama")
    with pytest.raises(InvalidPersonName):
        gallery.rename_person("biden", "../biden")
    with pytest.raises(GalleryError, match="no person"):
        gallery.rename_person("nobody", "Somebody")
    photos = sorted(p.name for p in (knn_gallery / "biden").iterdir())
    moved = gallery.delete_person("biden", tmp_path / "backup")
    assert not (knn_gallery / "biden").exists()
    assert sorted(p.name for p in moved.iterdir()) == photos
    assert "biden" not in gallery.embeddings()[1]
    # Deleting a second "biden" later never overwrites the first backup.
    gallery.add_person("biden")
    second = gallery.delete_person("biden", tmp_path / "backup")
    assert second != moved and moved.exists()


def test_a_cancelled_sync_keeps_the_previous_embeddings(knn_gallery: Path, models: tuple) -> None:
    gallery = _gallery(knn_gallery, models)
    gallery.sync()
    before = gallery.snapshot()
    shutil.rmtree(knn_gallery / "rose_leslie")
    cancel = threading.Event()

    def progress(done: int, total: int, item: str) -> None:
        if done == 2:
            cancel.set()

    report = gallery.sync(progress=progress, cancel=cancel)
    assert report.cancelled
    assert gallery.snapshot() is before
    assert "rose_leslie" in gallery.embeddings()[1]  # still the previous, complete set
    assert gallery.sync().usable == 6
    assert "rose_leslie" not in gallery.embeddings()[1]


def test_a_new_embedder_needs_a_sync(knn_gallery: Path, models: tuple) -> None:
    detector, embedder = models
    gallery = _gallery(knn_gallery, models)
    gallery.sync()
    assert not gallery.needs_sync
    gallery.set_embedder(create_embedder("sface"))
    assert gallery.needs_sync and gallery.embeddings()[0].shape[0] == 0
    # Same weights, same model id: the cache answers everything.
    assert gallery.sync().embedded == 0
    assert gallery.snapshot().model_id == embedder.model_id


def test_readers_see_a_consistent_gallery_while_a_worker_syncs(knn_gallery: Path, models: tuple) -> None:
    gallery = _gallery(knn_gallery, models)
    errors: list[BaseException] = []

    def sync() -> None:
        try:
            gallery.sync()
        except BaseException as exc:  # handed to the test thread below
            errors.append(exc)

    worker = threading.Thread(target=sync)
    worker.start()
    reads = 0
    while worker.is_alive() or reads == 0:
        matrix, labels = gallery.embeddings()
        assert matrix.shape[0] == len(labels)
        assert {p.name for p in gallery.people()} == {
            "alex_lacamoire",
            "biden",
            "kit_harington",
            "obama",
            "rose_leslie",
        }
        reads += 1
    worker.join()
    assert errors == [] and len(gallery.embeddings()[1]) == 8
