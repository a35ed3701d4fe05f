"""The trainer tab's "Align photos…" step: real demo photos aligned in the worker thread, with a report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.trainer_align import AlignPanel, crops_folder_for
from app.trainer_tab import TrainerTab
from core import paths
from core.settings import Settings


@pytest.fixture
def photos(demo_dir: Path, tmp_path: Path) -> Path:
    """Two people's demo photos, a group photo and a text file renamed .jpg."""
    root = tmp_path / "photos"
    train = demo_dir / "knn_examples" / "train"
    for person in ("obama", "rose_leslie"):
        shutil.copytree(train / person, root / person)
    shutil.copy(demo_dir / "two_people.jpg", root / "obama" / "two_people.jpg")
    (root / "rose_leslie" / "notes.jpg").write_text("not a photo", encoding="utf-8")
    return root


def _rows(panel: AlignPanel) -> dict[str, str]:
    table = panel.table
    return {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}


def test_align_photos_reports_each_photo_and_feeds_the_training_data(
    qtbot, photos: Path, no_leaked_threads
) -> None:
    tab = TrainerTab(settings=Settings)
    qtbot.addWidget(tab)
    panel = tab.align_panel
    shown: list[str] = []
    # Connected after the panel: each report's status line as the user saw it.
    panel.controller.progress.connect(lambda _p: shown.append(panel.status_label.text()))
    with qtbot.waitSignal(panel.crops_ready, timeout=60000) as ready:
        assert panel.align(photos)
        assert panel.cancel_button.isEnabled() and not panel.align_button.isEnabled()
    qtbot.waitUntil(lambda: not panel.controller.is_running(), timeout=10000)
    target = crops_folder_for(photos)
    assert ready.args == [str(target)] and target.parent == paths.data_dir() / "training" / "crops"
    assert _rows(panel) == {
        "obama/obama.jpg": "aligned",
        "obama/obama2.jpg": "aligned",
        "obama/two_people.jpg": "several faces",
        "rose_leslie/img1.jpg": "aligned",
        "rose_leslie/img2.jpg": "aligned",
        "rose_leslie/notes.jpg": "unreadable",
    }
    assert (
        len(shown) == 6
        and shown[2].startswith("Aligning photos: 3 of 6 · about ")
        and shown[2].endswith(" left")
    )
    assert panel.status_label.text().startswith(
        "6 photos: 4 aligned, 0 no face, 1 several faces, 1 unreadable"
    )
    assert tab.data_edit.text() == str(target) and len(list(target.rglob("*.jpg"))) == 4
    assert not panel.cancel_button.isEnabled() and panel.align_button.isEnabled()

    # A photo taken out of the folder leaves the training data when the folder is aligned again.
    (photos / "rose_leslie" / "img2.jpg").unlink()
    with qtbot.waitSignal(panel.crops_ready, timeout=60000):
        panel.align(photos)
    qtbot.waitUntil(lambda: not panel.controller.is_running(), timeout=10000)
    assert (
        len(list(target.rglob("*.jpg"))) == 3
        and "deleted 1 crop whose photo is gone" in panel.status_label.text()
    )


def test_use_my_gallery_aligns_the_gallery_folder(qtbot, demo_gallery: Path, no_leaked_threads) -> None:
    settings = Settings().replace(gallery_dir=str(demo_gallery))
    tab = TrainerTab(settings=lambda: settings)
    qtbot.addWidget(tab)
    with qtbot.waitSignal(tab.align_panel.crops_ready, timeout=60000):
        tab.align_panel.gallery_button.click()
    qtbot.waitUntil(lambda: not tab.align_panel.controller.is_running(), timeout=10000)
    target = paths.data_dir() / "training" / "crops" / "gallery"
    assert tab.data_edit.text() == str(target)
    assert {p.name for p in target.iterdir()} == {p.name for p in demo_gallery.iterdir()} - {"biden"} | {
        "biden"
    }
    report = tab.align_panel.report
    assert report.source == demo_gallery and report.aligned >= 8 and not report.cancelled


def test_cancel_stops_between_photos_and_keeps_what_was_aligned(
    qtbot, photos: Path, no_leaked_threads
) -> None:
    panel = AlignPanel(Settings)
    qtbot.addWidget(panel)
    # Cancel as soon as the first photo is done: the report holds fewer photos than the folder.
    panel.controller.progress.connect(lambda _p: panel.cancel_button.click())
    with qtbot.waitSignal(panel.controller.finished, timeout=60000) as finished:
        panel.align(photos)
    qtbot.waitUntil(lambda: not panel.controller.is_running(), timeout=10000)
    report = finished.args[0]
    assert report.cancelled and 1 <= len(report.photos) < 6
    assert "(cancelled)" in panel.status_label.text()


def test_a_missing_folder_is_refused_in_one_line(qtbot, tmp_path: Path) -> None:
    panel = AlignPanel(Settings)
    qtbot.addWidget(panel)
    assert not panel.align(tmp_path / "nope")
    assert "does not exist" in panel.status_label.text() and not panel.controller.is_running()
