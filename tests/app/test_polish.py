"""Polish users notice: Start only when there is something to start, no empty status boxes, and more.

File dialogs in the user's folders, plugin settings in words, Help with the guides and shortcuts,
"Copy report", the theme applied live, and one spelling.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QApplication, QLabel, QLineEdit, QPushButton, QSpinBox

from app.context import AppContext
from app.help_menu import ShortcutsDialog
from app.main_window import MainWindow
from app.plugins_dialog import PluginsDialog
from app.recognition_worker import WorkerStats
from app.user_dirs import start_folder
from core.events import create_event_bus
from core.settings import PluginSettings, Settings
from core.types import StageTimings

REPO = Path(__file__).resolve().parents[2]


def _window(qtbot, source: str) -> MainWindow:
    window = MainWindow(AppContext.build(Settings().replace(camera={"source": source}), system_trash=False))
    qtbot.addWidget(window)
    window.show()
    return window


def test_start_is_disabled_when_there_is_nothing_to_start(qtbot, hamilton_clip: Path, tmp_path: Path) -> None:
    window = _window(qtbot, "0")
    qtbot.waitUntil(lambda: window.live.empty_state.title.text() == "No camera found", timeout=20_000)
    assert not window.start_action.isEnabled(), "no camera: nothing to start"
    window.set_source(str(tmp_path / "gone.mp4"), start=False)
    assert not window.start_action.isEnabled(), "a video that is not there"
    window.set_source(str(hamilton_clip), start=False)
    assert window.start_action.isEnabled()
    window.close()


def test_the_status_bar_shows_no_empty_boxes(qtbot, hamilton_clip: Path) -> None:
    window = _window(qtbot, str(hamilton_clip))
    qtbot.waitExposed(window)

    def empty_boxes() -> list[str]:
        labels = window.statusBar().findChildren(QLabel)
        return [label.objectName() for label in labels if label.isVisible() and not label.text().strip()]

    assert not empty_boxes()
    stats = WorkerStats(12.0, 100, 1, 2, 0, StageTimings(detect_ms=9.0), 1, "clip")
    window.figures.show_stats(stats)
    assert window.figures.timings_label.isVisible() and window.figures.dropped_label.isVisible()
    window.figures.show_running(False)
    assert not empty_boxes()
    window.close()


def test_file_dialogs_open_in_the_users_folders(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    window = _window(qtbot, "0")
    asked: list[str] = []

    def open_file(_parent, _title, folder="", _filters=""):  # type: ignore[no-untyped-def]
        asked.append(folder)
        return "", ""

    def open_folder(_parent, _title, folder=""):  # type: ignore[no-untyped-def]
        asked.append(folder)
        return ""

    # The dialogs themselves would wait for a user: only where they open is checked.
    monkeypatch.setattr("app.window_dialogs.QFileDialog.getOpenFileName", open_file)
    monkeypatch.setattr("app.window_dialogs.QFileDialog.getExistingDirectory", open_folder)
    window.open_video()
    window.open_image_folder()
    assert len(asked) == 2
    for folder in asked:
        assert folder and Path(folder).is_dir() and Path(folder).resolve() != Path.cwd().resolve(), folder
    assert asked[1] == start_folder()
    window.close()


def test_plugin_settings_have_labels_help_defaults_units_and_browse(qtbot, tmp_path: Path) -> None:
    bus = create_event_bus(Settings(), folder=tmp_path / "plugins", history=False)
    try:
        dialog = PluginsDialog(bus, settings=PluginSettings(), discovered=bus.discovered)
        qtbot.addWidget(dialog)
        dialog.select("webhook")
        labels = [dialog.findChild(QLabel, f"setting-{key}-label").text() for key in dialog._editors]
        assert "Timeout" in labels and not [text for text in labels if "_" in text], labels
        timeout = dialog.findChild(QSpinBox, "setting-retries")
        assert timeout is not None and (timeout.minimum(), timeout.maximum()) == (0, 20)
        assert dialog._editors["timeout_s"].suffix() == " s"  # type: ignore[attr-defined]
        help_text = dialog.findChild(QLabel, "setting-timeout_s-help").text()
        assert "retries included" in help_text and "Default: 5.0" in help_text
        dialog.select("snapshot")
        assert dialog.findChild(QLabel, "setting-keep_days-label").text() == "Keep images for"
        assert dialog.findChild(QPushButton, "setting-folder-browse") is not None
        assert isinstance(dialog._editors["folder"], QLineEdit)
        dialog.set_form_value("mode", "frame")
        assert dialog.form_values()["mode"] == "frame"
    finally:
        bus.stop()


def test_help_lists_the_guides_and_the_shortcuts(qtbot, monkeypatch: pytest.MonkeyPatch) -> None:
    window = _window(qtbot, "0")
    opened: list[QUrl] = []
    monkeypatch.setattr("app.help_menu.QDesktopServices.openUrl", lambda url: opened.append(url) or True)
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    titles = {action.text(): action for action in help_menu.actions()}
    assert "Writing a GhostFace plugin" in titles and "Training GhostFaceNetV2" in titles
    titles["Writing a GhostFace plugin"].trigger()
    assert opened and opened[0].toLocalFile().endswith("docs/plugins.md")
    titles["&Keyboard shortcuts…"].trigger()
    dialog = window.findChild(ShortcutsDialog, "ShortcutsDialog")
    assert dialog is not None and dialog.isVisible()
    table = dialog.table
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["Start"] == "Space" and rows["Settings"] == "Ctrl+," and rows["Full screen"] == "F11", rows
    dialog.close()
    window.close()


def test_diagnostics_copies_a_plain_text_report(qtbot) -> None:
    window = _window(qtbot, "0")
    window.diagnostics.add_error("RuntimeError: something broke")
    window.diagnostics.refresh_models()
    copy = window.diagnostics.findChild(QPushButton, "CopyReport")
    copy.click()
    text = QApplication.clipboard().text()
    assert text.startswith("GhostFace ") and "Embedder device:" in text and "Model files:" in text
    assert "sface" in text and "RuntimeError: something broke" in text
    assert "<" not in text  # plain text, no markup
    window.close()


def test_the_theme_is_applied_live_from_the_settings(qtbot, qapp) -> None:
    window = _window(qtbot, "0")
    try:
        window.apply_settings(window.settings.replace(ui={"theme": "light"}))
        assert "#f6f8fa" in qapp.styleSheet()
        window.apply_settings(window.settings.replace(ui={"theme": "dark"}))
        assert "#1b1f24" in qapp.styleSheet()
    finally:
        qapp.setStyleSheet("")
        window.close()


# Names in code and data keys that keep their spelling (renaming them would break callers), and the
# places that quote the rejected spelling on purpose.
_KEPT = re.compile(r'names_recognised|\.recognised\b|\brecognised\b(?= =|: Counter|\))|"recognised"|`recognised`')


def test_one_spelling_recognized_in_user_visible_text() -> None:
    found = []
    for folder in ("app", "core", "cli", "docs"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix not in (".py", ".md") or not path.is_file():
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(r"recognis|recogniser", _KEPT.sub("", line), re.IGNORECASE):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    for number, line in enumerate((REPO / "README.md").read_text(encoding="utf-8").splitlines(), 1):
        if re.search(r"recognis", line, re.IGNORECASE):
            found.append(f"README.md:{number}: {line.strip()}")
    assert not found, "\n".join(found)
