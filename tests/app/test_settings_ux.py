"""The settings speak the user's language: units, labels in words, a 0-1 similarity, visible states, themes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QColor, QImage
from PySide6.QtWidgets import QApplication, QCheckBox, QComboBox, QDoubleSpinBox, QLabel, QSpinBox, QWidget

from app.field_text import field_label, human_name, unit_of
from app.icons import icon
from app.settings_dialog import SettingsDialog
from app.themes import apply_theme, style_sheet
from core.settings import Settings


@pytest.fixture
def dark_theme(qapp: QApplication) -> Iterator[None]:
    """The app's dark style sheet, as the running app has it; removed afterwards."""
    qapp.setStyleSheet(style_sheet("dark"))
    yield
    qapp.setStyleSheet("")


def _dialog(qtbot, settings: Settings | None = None) -> SettingsDialog:
    dialog = SettingsDialog(settings or Settings(), devices=["cpu"])
    qtbot.addWidget(dialog)
    return dialog


def _spin(dialog: SettingsDialog, name: str) -> QSpinBox | QDoubleSpinBox:
    editor = dialog.editor(name)
    spin = editor if isinstance(editor, QSpinBox | QDoubleSpinBox) else editor.findChild(QDoubleSpinBox)
    assert spin is not None, name
    return spin


def test_numbers_carry_their_unit_as_a_suffix(qtbot) -> None:
    dialog = _dialog(qtbot)
    assert _spin(dialog, "detection.min_face_px").suffix() == " px"
    assert _spin(dialog, "camera.width").suffix() == " px"
    assert _spin(dialog, "tracking.max_missed_frames").suffix() == " frames"
    assert _spin(dialog, "tracking.reembed_interval").suffix() == " frames"
    assert _spin(dialog, "events.cooldown_s").suffix() == " s"
    assert _spin(dialog, "events.history_max_days").suffix() == " days"
    assert _spin(dialog, "events.history_max_mb").suffix() == " MB"
    assert _spin(dialog, "camera.max_fps").suffix() == " fps"
    # A similarity has no unit.
    assert _spin(dialog, "recognition.margin").suffix() == ""


def test_labels_are_words_without_field_names_or_bracketed_units(qtbot) -> None:
    dialog = _dialog(qtbot)
    labels = [label.text() for label in dialog.findChildren(QLabel) if label.objectName().endswith(".label")]
    assert labels, "every row has a named label"
    for text in labels:
        assert "_" not in text and not text.endswith(")"), text
    assert dialog.findChild(QLabel, "events.history_max_days.label").text() == "Keep history"
    # Plugin settings read the same way, and a unit leaves the name.
    assert (human_name("timeout_s"), unit_of("timeout_s")) == ("Timeout", "s")
    assert human_name("include_thumbnail") == "Include thumbnail"
    assert field_label("x.keep_count", None) == "Keep count"


def test_similarity_threshold_is_set_on_a_zero_to_one_scale(qtbot) -> None:
    dialog = _dialog(qtbot, Settings().replace(recognition={"threshold_from_model": False}))
    edit = dialog.editor("recognition.similarity_threshold")
    assert (edit.spin.minimum(), edit.spin.maximum()) == (0.0, 1.0)
    assert (edit.slider.minimum(), edit.slider.maximum()) == (0, 100)


def test_model_and_theme_lists_are_not_editable_as_text(qtbot) -> None:
    dialog = _dialog(qtbot)
    for name in ("detection.detector.list", "recognition.embedder.list", "recognition.device", "ui.theme"):
        combo = dialog.findChild(QComboBox, name)
        assert combo is not None and not combo.isEditable(), name
    theme = dialog.findChild(QComboBox, "ui.theme")
    assert [theme.itemText(i) for i in range(theme.count())] == ["Dark", "Light", "Follow the system"]


def _pixels(widget: QWidget) -> QImage:
    widget.ensurePolished()
    return widget.grab().toImage()


def test_a_disabled_control_looks_disabled_in_the_dark_theme(qtbot, dark_theme) -> None:
    dialog = _dialog(qtbot)
    dialog.show()
    spin = _spin(dialog, "recognition.similarity_threshold")
    label = dialog.findChild(QLabel, "recognition.similarity_threshold.label")
    # The model's threshold is in use: the hand-set one and its label are greyed out...
    assert not spin.isEnabled() and not label.isEnabled()
    disabled = _pixels(spin)
    dialog.set_value("recognition.threshold_from_model", False)
    assert spin.isEnabled() and label.isEnabled()
    # ...and drawn differently from an enabled one (the old sheet coloured both the same).
    assert _pixels(spin) != disabled


def test_check_boxes_are_visible_on_the_dark_background(qtbot, dark_theme) -> None:
    box = QCheckBox()
    qtbot.addWidget(box)
    box.resize(30, 30)
    image = _pixels(box)
    background = QColor(image.pixel(image.width() - 1, image.height() - 1)).lightness()
    contrast = max(
        abs(QColor(image.pixel(x, y)).lightness() - background)
        for x in range(image.width())
        for y in range(image.height())
    )
    # An unchecked box drawn by the old sheet differed by 7 levels of 255 from the background.
    assert contrast > 60


def test_the_theme_applies_live_and_can_follow_the_system(qtbot, qapp) -> None:
    dialog = _dialog(qtbot)
    live: list[Settings] = []
    dialog.settings_changed.connect(live.append)
    dialog.set_value("ui.theme", "light")
    qtbot.waitUntil(lambda: bool(live), timeout=2000)
    assert live[-1].ui.theme == "light"
    camera = icon("camera")
    try:
        dark_icon = camera.pixmap(24).toImage()
        assert apply_theme("light") == "light"
        assert "#f6f8fa" in qapp.styleSheet()
        # The icons' lines turn dark on the light theme (light lines on white would vanish).
        assert camera.pixmap(24).toImage() != dark_icon
        assert apply_theme("dark") == "dark"
        assert "#1b1f24" in qapp.styleSheet()
        assert apply_theme("system") in ("dark", "light")
        assert "@ICONS@" not in qapp.styleSheet()
    finally:
        qapp.setStyleSheet("")
