"""Numbers in the settings dialog apply when committed (Enter, focus out, steps, slider release), never half typed.

Typing ``0.45`` into the similarity threshold passes through ``0`` and ``0.``: applied as typed, the
threshold would be about 0 for a moment and a stranger would be "recognised" (an event for History,
the attendance log and every plugin).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QWidget

from app.context import AppContext
from app.main_window import MainWindow
from app.settings_dialog import DEBOUNCE_MS, SettingsDialog
from core.settings import Settings
from core.types import EventKind, FrameResult, RecognitionEvent

# Slower than the debounce, as a person types: each keystroke would have been applied on its own.
KEY_DELAY_MS = DEBOUNCE_MS + 40


def _hand_set(threshold: float) -> Settings:
    return Settings().replace(recognition={"threshold_from_model": False, "similarity_threshold": threshold})


def _show(qtbot, dialog: SettingsDialog, tab: str = "Recognition") -> None:
    dialog.show()
    dialog.activateWindow()
    qtbot.waitActive(dialog)
    titles = [dialog.tabs.tabText(i) for i in range(dialog.tabs.count())]
    dialog.tabs.setCurrentIndex(titles.index(tab))


def _type_into_threshold(qtbot, dialog: SettingsDialog, text: str) -> QWidget:
    spin = dialog.editor("recognition.similarity_threshold").spin
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), text, delay=KEY_DELAY_MS)
    qtbot.wait(DEBOUNCE_MS * 3)
    return spin


def test_a_typed_threshold_applies_on_enter_never_half_typed(qtbot) -> None:
    dialog = SettingsDialog(_hand_set(0.36), devices=["cpu"])
    qtbot.addWidget(dialog)
    applied: list[Settings] = []
    dialog.settings_changed.connect(applied.append)
    _show(qtbot, dialog)

    spin = _type_into_threshold(qtbot, dialog, "0.45")
    assert applied == [], f"applied while typing: {[s.recognition.similarity_threshold for s in applied]}"

    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(applied), timeout=2000)
    assert [s.recognition.similarity_threshold for s in applied] == [0.45]
    # Enter commits the number; it does not close the dialog the user is tuning in.
    assert dialog.isVisible()


def test_a_typed_threshold_applies_on_focus_out(qtbot) -> None:
    dialog = SettingsDialog(_hand_set(0.36), devices=["cpu"])
    qtbot.addWidget(dialog)
    applied: list[Settings] = []
    dialog.settings_changed.connect(applied.append)
    _show(qtbot, dialog)

    _type_into_threshold(qtbot, dialog, "0.45")
    assert applied == []
    margin = dialog.editor("recognition.margin").spin
    margin.setFocus()
    assert margin.hasFocus()
    qtbot.waitUntil(lambda: bool(applied), timeout=2000)
    assert [s.recognition.similarity_threshold for s in applied] == [0.45]


def test_arrow_keys_and_the_slider_release_apply(qtbot) -> None:
    dialog = SettingsDialog(_hand_set(0.36), devices=["cpu"])
    qtbot.addWidget(dialog)
    applied: list[Settings] = []
    dialog.settings_changed.connect(applied.append)
    _show(qtbot, dialog)
    edit = dialog.editor("recognition.similarity_threshold")

    edit.spin.setFocus()
    qtbot.keyClick(edit.spin, Qt.Key.Key_Up)
    qtbot.waitUntil(lambda: bool(applied), timeout=2000)
    assert abs(applied[-1].recognition.similarity_threshold - 0.37) < 1e-9

    # A drag shows the value beside the slider but applies it only on release.
    slider = edit.slider
    slider.setSliderDown(True)
    for position in (30, 10, 5):
        slider.setSliderPosition(position)
    qtbot.wait(DEBOUNCE_MS * 3)
    assert len(applied) == 1 and abs(edit.spin.value() - 0.05) < 1e-9
    slider.setSliderDown(False)
    qtbot.waitUntil(lambda: len(applied) == 2, timeout=2000)
    assert abs(applied[-1].recognition.similarity_threshold - 0.05) < 1e-9


def test_typing_a_whole_number_applies_it_once(qtbot) -> None:
    dialog = SettingsDialog(Settings(), devices=["cpu"])
    qtbot.addWidget(dialog)
    applied: list[Settings] = []
    dialog.settings_changed.connect(applied.append)
    _show(qtbot, dialog, "Detection")
    spin = dialog.editor("detection.min_face_px")
    spin.setFocus()
    spin.lineEdit().selectAll()
    qtbot.keyClicks(spin.lineEdit(), "120", delay=KEY_DELAY_MS)
    qtbot.wait(DEBOUNCE_MS * 3)
    assert applied == []
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: bool(applied), timeout=2000)
    assert [s.detection.min_face_px for s in applied] == [120]


def test_typing_into_the_running_apps_dialog_never_reaches_the_worker_half_typed(
    qtbot, hamilton_clip: Path, hamilton_gallery: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _hand_set(0.36).replace(
        camera={"source": str(hamilton_clip)}, gallery_dir=str(hamilton_gallery)
    )
    window = MainWindow(AppContext.build(settings, system_trash=False), autostart=True)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.video_view.frames_shown > 0, timeout=60_000)
    reached: list[float] = []
    events: list[RecognitionEvent] = []
    to_worker = window.controller.apply_settings

    def record(new: Settings) -> None:
        reached.append(new.recognition.similarity_threshold)
        to_worker(new)

    monkeypatch.setattr(window.controller, "apply_settings", record)

    def take_events(result: FrameResult) -> None:
        events.extend(result.events)

    # The controller's signal, re-emitted on the GUI thread (never a worker's own).
    window.controller.frame_ready.connect(take_events)
    dialog = window.open_settings()
    _show(qtbot, dialog)

    spin = _type_into_threshold(qtbot, dialog, "0.45")
    assert reached == [], f"half-typed thresholds reached the worker: {reached}"
    qtbot.keyClick(spin.lineEdit(), Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: reached == [0.45], timeout=2000)
    qtbot.waitUntil(lambda: window.controller.settings.recognition.similarity_threshold == 0.45, timeout=2000)
    qtbot.wait(500)
    # No one was "recognised" below the thresholds the user committed to (0.36, then 0.45).
    named = [e for e in events if e.person is not None and e.kind is EventKind.RECOGNIZED]
    assert all(e.similarity >= 0.36 for e in named), [(e.person, e.similarity) for e in named]
    dialog.reject()
    window.close()


def test_ok_commits_a_number_still_being_typed(qtbot) -> None:
    saved: list[Settings] = []
    dialog = SettingsDialog(_hand_set(0.36), save=saved.append, devices=["cpu"])
    qtbot.addWidget(dialog)
    _show(qtbot, dialog)
    _type_into_threshold(qtbot, dialog, "0.45")
    dialog.accept()  # OK by its shortcut: the field may never have lost the focus
    assert [s.recognition.similarity_threshold for s in saved] == [0.45]
