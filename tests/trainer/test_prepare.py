"""Aligning photos into training crops: the per-photo report, progress, Cancel, and the tab's recipe."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import cv2
import pytest

from core.engine import build_detector
from core.settings import Settings
from trainer.prepare import AlignStatus, align_folder, align_photos
from trainer.recipes import FINETUNE_RECIPE, finetune_recipe, fit_to_data


@pytest.fixture
def photos(demo_dir: Path, tmp_path: Path) -> Path:
    """Real demo photos, one folder per person, plus a group photo, a text file named .jpg, a photo
    without a face (the corner of a real frame) and a hidden folder the aligner must not enter."""
    root = tmp_path / "photos"
    train = demo_dir / "knn_examples" / "train"
    for person in ("obama", "kit_harington"):
        shutil.copytree(train / person, root / person)
    shutil.copy(demo_dir / "two_people.jpg", root / "obama" / "group.jpg")
    (root / "kit_harington" / "notes.jpg").write_text("not a photo", encoding="utf-8")
    frame = cv2.imread(str(demo_dir / "obama-1080p.jpg"))
    cv2.imwrite(str(root / "kit_harington" / "wall.jpg"), frame[:200, :200])
    (root / ".trash").mkdir()
    shutil.copy(train / "obama" / "obama.jpg", root / ".trash" / "old.jpg")
    return root


def test_every_photo_gets_its_outcome_with_progress(photos: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int, str]] = []
    report = align_photos(
        photos,
        tmp_path / "crops",
        build_detector(Settings()),
        progress=lambda done, total, item: seen.append((done, total, item.photo)),
    )
    outcome = {p.photo: p.status for p in report.photos}
    assert outcome == {
        "kit_harington/john1.jpeg": AlignStatus.ALIGNED,
        "kit_harington/john2.jpeg": AlignStatus.ALIGNED,
        "kit_harington/notes.jpg": AlignStatus.UNREADABLE,
        "kit_harington/wall.jpg": AlignStatus.NO_FACE,
        "obama/group.jpg": AlignStatus.SEVERAL_FACES,
        "obama/obama.jpg": AlignStatus.ALIGNED,
        "obama/obama2.jpg": AlignStatus.ALIGNED,
    }
    assert [s[:2] for s in seen] == [(k, 7) for k in range(1, 8)]
    assert report.summary() == "7 photos: 4 aligned, 1 no face, 1 several faces, 1 unreadable"
    crops = sorted(p.relative_to(tmp_path / "crops").as_posix() for p in (tmp_path / "crops").rglob("*.jpg"))
    assert crops == [
        "kit_harington/john1.jpg",
        "kit_harington/john2.jpg",
        "obama/obama.jpg",
        "obama/obama2.jpg",
    ]
    assert cv2.imread(str(tmp_path / "crops" / "obama" / "obama.jpg")).shape == (112, 112, 3)
    # The unreadable photo's reason, without its path again.
    unreadable = next(p for p in report.photos if p.status is AlignStatus.UNREADABLE)
    assert str(photos) not in unreadable.detail and "not an image" in unreadable.detail

    again = align_photos(photos, tmp_path / "crops", build_detector(Settings()))
    assert again.aligned == 4 and again.written == 0


def test_a_cancelled_run_reports_what_it_did(photos: Path, tmp_path: Path) -> None:
    calls = iter([False, False, True])
    report = align_photos(
        photos, tmp_path / "crops", build_detector(Settings()), should_stop=lambda: next(calls)
    )
    assert report.cancelled and len(report.photos) == 2 and report.total == 7
    assert report.summary().startswith("2 of 7 photos:") and report.summary().endswith("(cancelled)")


def test_the_gallery_mark_and_the_command_line_keep_the_largest_face(photos: Path, tmp_path: Path) -> None:
    (photos / "obama" / "group.jpg").rename(photos / "obama" / "group.largest.jpg")
    report = align_photos(photos, tmp_path / "crops", build_detector(Settings()))
    assert {p.photo: p.status for p in report.photos}["obama/group.largest.jpg"] is AlignStatus.ALIGNED
    summary = align_folder(photos, tmp_path / "cli")
    assert (summary["photos"], summary["written"], summary["no_face"], summary["unreadable"]) == (7, 5, 1, 1)


def test_the_built_in_recipe_is_the_shipped_one() -> None:
    shipped = json.loads((Path(__file__).resolve().parents[2] / "configs" / "wild_finetune.json").read_text())
    for key in ("data_path", "output_dir", "init_backbone"):
        shipped.pop(key)
    assert shipped == FINETUNE_RECIPE


def test_the_recipe_is_fitted_to_a_small_data_set(tmp_path: Path, train_dir: Path) -> None:
    root = tmp_path / "crops"
    people = [p for p in sorted((train_dir / "celeba").iterdir()) if len(list(p.glob("*.jpg"))) >= 6]
    for person in people[:9]:
        (root / person.name).mkdir(parents=True)
        for crop in sorted(person.glob("*.jpg"))[:6]:
            shutil.copy2(crop, root / person.name / crop.name)
    config, notes = fit_to_data({**finetune_recipe(), "data_path": [str(root)]})
    # 9 people with 6 crops: 3 held out for validation, the 36 crops of the others fill one batch.
    assert config["validation"]["holdout_identities"] == 3 and config["batch_size"] == 36
    assert len(notes) == 2 and "instead of 60" in notes[0] and "instead of 96" in notes[1]
    for person in people[:4]:  # 5 people left: too few to hold 2 out and still train on most
        shutil.rmtree(root / person.name)
    config, notes = fit_to_data({**finetune_recipe(), "data_path": [str(root)]})
    assert config["validation"]["holdout_identities"] == 0 and "no validation" in notes[0]
    assert finetune_recipe()["validation"]["holdout_identities"] == 60  # the recipe itself is untouched


def test_a_photo_taken_out_of_the_folder_leaves_the_training_data(
    photos: Path, tmp_path: Path, demo_dir: Path
) -> None:
    crops = tmp_path / "crops"
    detector = build_detector(Settings())
    assert align_photos(photos, crops, detector, prune=True).aligned == 4
    # The wrong photo is removed; another is replaced by a group photo (newer than its crop).
    (photos / "obama" / "obama2.jpg").unlink()
    shutil.copy(demo_dir / "two_people.jpg", photos / "kit_harington" / "john2.jpeg")
    os.utime(photos / "kit_harington" / "john2.jpeg", (time.time() + 5, time.time() + 5))
    report = align_photos(photos, crops, detector, prune=True)
    statuses = {p.photo: p.status for p in report.photos}
    assert statuses["kit_harington/john2.jpeg"] is AlignStatus.SEVERAL_FACES
    assert report.removed == 2 and "deleted 2 crops whose photos are gone" in report.summary()
    left = sorted(p.relative_to(crops).as_posix() for p in crops.rglob("*.jpg"))
    assert left == ["kit_harington/john1.jpg", "obama/obama.jpg"]
    # Without prune (the command line, whose output folder may hold other crops) nothing is deleted.
    (crops / "obama" / "mine.jpg").write_bytes((crops / "obama" / "obama.jpg").read_bytes())
    assert align_photos(photos, crops, detector).removed == 0 and (crops / "obama" / "mine.jpg").is_file()
