"""The Gallery tab with the real gallery worker, real models and real photos."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from app.gallery_panel import GalleryPanel
from app.gallery_worker import GalleryController, SyncGallery
from core.gallery import PhotoStatus
from core.settings import Settings

JOB_TIMEOUT_MS = 60_000


@pytest.fixture
def panel(qtbot, tmp_path: Path):
    settings = Settings().replace(gallery_dir=str(tmp_path / "gallery"))
    controller = GalleryController(settings)
    widget = GalleryPanel(controller, settings)
    widget.set_confirm(False)
    qtbot.addWidget(widget)
    yield widget, controller
    assert controller.stop()


def _run(qtbot, controller: GalleryController, action) -> object:
    """Run ``action`` and wait for the job it submits to finish; a job error fails the test at once."""
    outcome: list[object] = []
    controller.job_finished.connect(outcome.append)
    controller.error.connect(outcome.append)
    try:
        action()
        qtbot.waitUntil(lambda: bool(outcome), timeout=JOB_TIMEOUT_MS)
    finally:
        controller.job_finished.disconnect(outcome.append)
        controller.error.disconnect(outcome.append)
    if isinstance(outcome[0], BaseException):
        raise outcome[0]
    return outcome[0]


def test_add_photos_reports_a_no_face_image_and_keeps_the_rest(
    qtbot, panel, demo_dir: Path, tmp_path: Path
) -> None:
    widget, controller = panel
    landscape = tmp_path / "no-face.jpg"
    # A real photo with no face in it: the background corner of a demo photo.
    import cv2

    image = cv2.imread(str(demo_dir / "obama.jpg"))
    cv2.imwrite(str(landscape), image[:60, :60])
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    photos = [demo_dir / "obama.jpg", landscape, broken, demo_dir / "obama2.jpg"]

    result = _run(qtbot, controller, lambda: widget.add_photos([str(p) for p in photos], name="Barack Obama"))
    report = result.value
    by_name = {r.path.name if r.ok else Path(r.path).name: r.status for r in report.results}
    assert [r.status for r in report.results] == [
        PhotoStatus.OK,
        PhotoStatus.NO_FACE,
        PhotoStatus.NOT_IMAGE,
        PhotoStatus.OK,
    ], by_name
    qtbot.waitUntil(lambda: len(widget.people) == 1, timeout=5000)
    person = widget.people[0]
    assert person.name == "Barack Obama" and len(person.photos) == 2
    # The user sees the per-photo report and the summary.
    assert widget.report.topLevelItemCount() == 4
    assert "2 photos added" in widget.status.text() and "2 not used" in widget.status.text()
    texts = [widget.report.topLevelItem(i).text(1) for i in range(4)]
    assert "no face" in texts[1] and "not an image" in texts[2]


def test_delete_keeps_a_recoverable_copy_in_the_backup_folder(qtbot, panel, demo_dir: Path) -> None:
    widget, controller = panel
    controller.use_system_trash = False
    _run(qtbot, controller, lambda: widget.add_photos([str(demo_dir / "biden.jpg")], name="Joe Biden"))
    qtbot.waitUntil(lambda: len(widget.people) == 1, timeout=5000)
    widget.select("Joe Biden")
    result = _run(qtbot, controller, widget.delete_person)
    removed = result.value
    assert not removed.in_system_trash
    from core.paths import data_dir

    assert removed.location.parent == data_dir() / "trash"
    kept = list(removed.location.iterdir())
    assert len(kept) == 1 and kept[0].read_bytes() == (demo_dir / "biden.jpg").read_bytes()
    qtbot.waitUntil(lambda: widget.people == [], timeout=5000)
    assert "backup folder" in widget.status.text()


def test_delete_to_the_system_trash_is_recoverable(
    qtbot, panel, demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The freedesktop trash lives under XDG_DATA_HOME: point it into the test's folder. Qt's trash
    # refuses to work when that folder does not exist (a real user's always does).
    (tmp_path / "xdg-data").mkdir()
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    widget, controller = panel
    _run(qtbot, controller, lambda: widget.add_photos([str(demo_dir / "biden.jpg")], name="Joe Biden"))
    widget.select("Joe Biden")
    removed = _run(qtbot, controller, widget.delete_person).value
    assert removed.location.exists()
    assert any(p.read_bytes() == (demo_dir / "biden.jpg").read_bytes() for p in removed.location.iterdir())
    assert not (tmp_path / "gallery" / "Joe Biden").exists()
    # The system trash took it (not the app's backup folder), in the trash this test pointed it at.
    assert removed.in_system_trash
    assert str(tmp_path / "xdg-data") in str(removed.location)


def test_add_rename_and_a_clear_error_for_a_bad_name(qtbot, panel) -> None:
    widget, controller = panel
    result = _run(qtbot, controller, lambda: widget.add_person("Alex Lacamoire"))
    assert result.value.name == "Alex Lacamoire"
    qtbot.waitUntil(lambda: widget.selected_name() == "Alex Lacamoire", timeout=5000)
    result = _run(qtbot, controller, lambda: widget.rename_person("Alex Lacamoire Jr"))
    assert result.value.name == "Alex Lacamoire Jr"
    qtbot.waitUntil(lambda: [p.name for p in widget.people] == ["Alex Lacamoire Jr"], timeout=5000)

    with qtbot.waitSignal(controller.error, timeout=JOB_TIMEOUT_MS) as blocker:
        widget.add_person("../escape")
    assert "name" in str(blocker.args[0]).lower()
    assert "Error" in widget.status.text()
    assert [p.name for p in widget.people] == ["Alex Lacamoire Jr"]


def test_reembed_reports_progress_and_can_be_cancelled(qtbot, panel, hamilton_gallery: Path) -> None:
    widget, controller = panel
    # Point the panel at the prepared gallery and load it.
    settings = Settings().replace(gallery_dir=str(hamilton_gallery))
    controller.apply_settings(settings)
    widget.set_settings(settings)
    progress: list[tuple[int, int]] = []
    controller.progress.connect(lambda done, total, _item: progress.append((done, total)))
    result = _run(qtbot, controller, lambda: controller.submit(SyncGallery()))
    while result.kind != "sync":
        result = _run(qtbot, controller, lambda: None)
    assert result.value.usable == 3 and not result.cancelled
    assert progress and progress[-1][0] == progress[-1][1]
    qtbot.waitUntil(lambda: len(widget.people) == 2, timeout=5000)

    # Cancel before the job starts: nothing new is embedded, the old embeddings stay.
    shutil.copy(
        hamilton_gallery / "Barack Obama" / "obama.jpg", hamilton_gallery / "Barack Obama" / "copy.jpg"
    )

    def cancelled_sync() -> None:
        controller.submit(SyncGallery())
        controller.cancel()

    result = _run(qtbot, controller, cancelled_sync)
    assert result.kind == "sync"
    # The Cancel pressed while the job waited in the queue reached it: nothing new was embedded.
    assert result.cancelled and result.value.embedded == 0


def test_the_gallery_worker_detects_at_the_live_resolution(qtbot, tmp_path: Path) -> None:
    # Both workers fill one embedding cache: the gallery worker must see a photo as the live worker
    # does (it once detected at full size while the live worker used max_side_px).
    settings = Settings().replace(gallery_dir=str(tmp_path / "gallery"), detection={"max_side_px": 320})
    controller = GalleryController(settings)
    try:
        with qtbot.waitSignal(controller.job_finished, timeout=JOB_TIMEOUT_MS):
            controller.refresh()
        gallery = controller._worker._gallery  # the worker's own gallery, read once it is idle
        assert gallery.detector.max_side == 320
        with qtbot.waitSignal(controller.job_finished, timeout=JOB_TIMEOUT_MS):
            controller.apply_settings(settings.replace(detection={"max_side_px": 480}))
            controller.refresh()
        assert controller._worker._gallery.detector.max_side == 480
    finally:
        assert controller.stop()
