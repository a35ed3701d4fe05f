"""The settings dialog: live edits, Cancel restores, OK saves, defaults, tooltips; the settings file on start."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QLabel, QWidget

from app.settings_dialog import SettingsDialog
from core.settings import Settings, load_settings


def _dialog(
    qtbot, settings: Settings, saved: list[Settings] | None = None
) -> tuple[SettingsDialog, list[Settings]]:
    live: list[Settings] = []
    dialog = SettingsDialog(settings, save=(saved.append if saved is not None else None), devices=["cpu"])
    qtbot.addWidget(dialog)
    dialog.settings_changed.connect(live.append)
    return dialog, live


def test_edits_go_live_and_cancel_restores_what_was_live(qtbot) -> None:
    start = Settings().replace(recognition={"similarity_threshold": 0.4})
    dialog, live = _dialog(qtbot, start)
    dialog.show()
    dialog.set_value("recognition.similarity_threshold", 0.99)
    qtbot.waitUntil(lambda: len(live) == 1, timeout=2000)
    assert live[-1].recognition.similarity_threshold == 0.99
    dialog.set_value("detection.min_face_px", 60)
    qtbot.waitUntil(lambda: len(live) == 2, timeout=2000)
    assert live[-1].detection.min_face_px == 60 and live[-1].recognition.similarity_threshold == 0.99

    dialog.reject()
    # Cancel hands back exactly the settings from before the dialog opened.
    assert live[-1] == start


def test_the_hand_set_threshold_is_editable_only_when_the_model_threshold_is_off(qtbot) -> None:
    dialog, live = _dialog(qtbot, Settings())
    threshold = dialog.editor("recognition.similarity_threshold")
    assert dialog.editor("recognition.threshold_from_model").isChecked()
    assert not threshold.isEnabled()
    dialog.set_value("recognition.threshold_from_model", False)
    assert threshold.isEnabled()
    dialog.set_value("recognition.similarity_threshold", 0.5)
    qtbot.waitUntil(lambda: bool(live) and live[-1].recognition.similarity_threshold == 0.5, timeout=2000)
    assert live[-1].recognition.threshold_from_model is False


def test_slider_drives_the_value(qtbot) -> None:
    dialog, live = _dialog(qtbot, Settings())
    edit = dialog.editor("recognition.margin")
    edit.slider.setValue(20)  # the slider counts hundredths
    qtbot.waitUntil(lambda: bool(live), timeout=2000)
    assert abs(live[-1].recognition.margin - 0.20) < 1e-9
    assert abs(edit.spin.value() - 0.20) < 1e-9


def test_ok_saves_the_final_settings(qtbot) -> None:
    saved: list[Settings] = []
    dialog, _ = _dialog(qtbot, Settings(), saved)
    dialog.set_value("display.show_landmarks", True)
    dialog.set_value("camera.max_fps", 12.0)
    dialog.accept()  # no wait: OK applies a pending edit itself
    assert len(saved) == 1
    assert saved[0].display.show_landmarks is True and saved[0].camera.max_fps == 12.0


def test_restore_defaults_keeps_source_and_gallery(qtbot, tmp_path: Path) -> None:
    start = Settings().replace(
        camera={"source": "clip.mp4", "max_fps": 5.0},
        detection={"min_face_px": 100},
        gallery_dir=str(tmp_path),
    )
    dialog, live = _dialog(qtbot, start)
    dialog.restore_defaults(ask=False)
    assert live, "restoring defaults applies them live"
    restored = live[-1]
    assert restored.detection.min_face_px == Settings().detection.min_face_px
    assert restored.camera.max_fps == Settings().camera.max_fps
    assert restored.camera.source == "clip.mp4" and restored.gallery_dir == str(tmp_path)
    dialog.reject()
    assert live[-1] == start


def test_every_editor_has_the_field_description_as_tooltip(qtbot) -> None:
    dialog, _ = _dialog(qtbot, Settings())
    for section in ("detection", "recognition", "camera", "tracking", "display", "events"):
        model = Settings.model_fields[section].annotation
        for key, info in model.model_fields.items():
            widget = dialog.findChild(QWidget, f"{section}.{key}")
            assert widget is not None, f"no editor for {section}.{key}"
            assert widget.toolTip() == info.description


def test_corrupt_settings_file_gives_defaults_and_a_visible_warning(qtbot, tmp_path: Path) -> None:
    from app.main_window import create_window

    path = tmp_path / "settings.json"
    path.write_text('{"recognition": {"similarity_threshold": "high"', encoding="utf-8")
    window = create_window(path, system_trash=False)
    qtbot.addWidget(window)
    window.show()
    try:
        assert window.settings == Settings()
        assert window.banner.isVisible()
        text = window.findChild(QLabel, "WarningBannerText").text()
        assert "could not be read" in text and str(path) in text
        assert "settings" in window.statusBar().currentMessage()
        # The unreadable original is kept beside it, and the file itself is untouched until a save.
        assert list(tmp_path.glob("settings.json.bad-*"))
        assert load_settings(path).warnings
    finally:
        window.close()


def test_bad_value_is_dropped_other_values_kept(qtbot, tmp_path: Path) -> None:
    from app.main_window import create_window

    path = tmp_path / "settings.json"
    path.write_text(
        json.dumps(
            {"recognition": {"similarity_threshold": 7, "margin": 0.2}, "camera": {"source": "x.mp4"}}
        ),
        encoding="utf-8",
    )
    window = create_window(path, system_trash=False)
    qtbot.addWidget(window)
    try:
        assert window.settings.recognition.margin == 0.2
        assert window.settings.recognition.similarity_threshold == Settings().recognition.similarity_threshold
        assert "similarity_threshold" in window.banner.label.text()
    finally:
        window.close()
