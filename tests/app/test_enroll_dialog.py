"""Guided enrolment from a "camera": the Hamilton clip stands in for it (no camera exists here)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QDialogButtonBox

from app.enroll_dialog import EnrollDialog
from app.gallery_worker import GalleryController
from core.settings import Settings

TIMEOUT_MS = 90_000


def test_enrol_keeps_good_shots_and_saves_them_to_the_gallery(
    qtbot, hamilton_clip: Path, tmp_path: Path
) -> None:
    gallery_dir = tmp_path / "gallery"
    settings = Settings().replace(camera={"source": str(hamilton_clip)}, gallery_dir=str(gallery_dir))
    gallery = GalleryController(settings)
    dialog = EnrollDialog(settings, gallery, name="Lin-Manuel Miranda", target_shots=3)
    qtbot.addWidget(dialog)
    dialog.show()
    save = dialog.buttons.button(QDialogButtonBox.StandardButton.Save)
    assert not save.isEnabled(), "nothing to save before a good shot"
    try:
        dialog.start_capture()
        qtbot.waitUntil(lambda: len(dialog.shots) == 3, timeout=TIMEOUT_MS)
        assert dialog.counter.value() == 3
        assert dialog.frames_seen > 0 and dialog.preview.pixmap() is not None
        assert save.isEnabled()
        with qtbot.waitSignal(gallery.job_finished, timeout=TIMEOUT_MS) as done:
            dialog.accept()
        results = done.args[0].value
        assert done.args[0].kind == "add_images"
        saved = [r for r in results if r.ok]
        assert saved, [r.message for r in results]
        photos = sorted((gallery_dir / "Lin-Manuel Miranda").glob("*.jpg"))
        assert len(photos) == len(saved)
    finally:
        dialog.close()
        assert gallery.stop()


def test_enrol_from_a_missing_camera_says_so(qtbot, tmp_path: Path) -> None:
    settings = Settings().replace(camera={"source": "7"}, gallery_dir=str(tmp_path / "g"))
    gallery = GalleryController(settings)
    dialog = EnrollDialog(settings, gallery, name="Someone")
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.start_capture()
    qtbot.waitUntil(lambda: "cannot be used" in dialog.hint.text(), timeout=TIMEOUT_MS)
    assert "camera 7" in dialog.hint.text()
    assert not dialog.buttons.button(QDialogButtonBox.StandardButton.Save).isEnabled()
    dialog.reject()
    assert gallery.stop()
