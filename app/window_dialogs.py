"""The windows the main window opens: settings, event history, plugins, camera enrolment, About.

Each opener needs the window (as parent, for the settings it applies, for the live view it pauses)
but none is part of the window's own layout, so they live here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QMessageBox

import core
from app.assign_face import FaceAssigner
from app.enroll_dialog import EnrollDialog
from app.fit import fit_to_screen
from app.history_dialog import HistoryDialog
from app.plugins_dialog import PluginsDialog
from app.settings_dialog import SettingsDialog
from app.user_dirs import start_folder
from core.engine import gallery_root
from core.settings import Settings

if TYPE_CHECKING:
    from app.main_window import MainWindow

__all__ = ["WindowDialogs"]


class WindowDialogs(QObject):
    """Opens the main window's dialogs; the settings dialog one at a time."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._settings_dialog: SettingsDialog | None = None
        # "Assign to person…" on Live's people list, its Events table and every History window.
        self.assigner = FaceAssigner(window.gallery_controller, window)
        self.assigner.attach_live(window.live.people, window.controller)
        table = window.events_panel.table
        self.assigner.attach_events(
            table, lambda row: item.data(Qt.ItemDataRole.UserRole) if (item := table.item(row, 0)) else None
        )

    def _save_applied(self, settings: Settings) -> None:
        self._window.apply_settings(settings, save=True)

    def show_gallery_folder(self) -> None:
        """Show the gallery folder in the file manager."""
        root = gallery_root(self._window.settings)
        root.mkdir(parents=True, exist_ok=True)
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(root)))

    def ask_video(self) -> str:
        """A video file the user picks ("" when cancelled)."""
        filters = "Videos (*.mp4 *.avi *.mkv *.mov *.webm *.m4v);;All files (*)"
        source = self._window.settings.camera.source
        path, _ = QFileDialog.getOpenFileName(
            self._window, "Open a video", start_folder(source, kind="videos"), filters
        )
        return path

    def ask_image_folder(self) -> str:
        """A folder of images the user picks ("" when cancelled)."""
        source = self._window.settings.camera.source
        return QFileDialog.getExistingDirectory(self._window, "Open a folder of images", start_folder(source))

    def open_settings(self) -> SettingsDialog:
        """The settings dialog (one at a time): edits go live, OK saves, Cancel restores."""
        if self._settings_dialog is not None:
            self._settings_dialog.raise_()
            return self._settings_dialog
        dialog = SettingsDialog(
            self._window.settings,
            self._window,
            save=self._save_applied,
            cameras=[str(c) for c in self._window.sources.cameras or []],
        )
        dialog.settings_changed.connect(self._window.apply_settings)
        dialog.finished.connect(self._settings_dialog_closed)
        self._settings_dialog = dialog
        fit_to_screen(dialog)
        dialog.open()
        return dialog

    def model_failed(self, error: BaseException) -> None:
        """A model could not be loaded: an open settings dialog takes its choice back (never saved)."""
        if self._settings_dialog is not None:
            self._settings_dialog.model_failed(error)

    def _settings_dialog_closed(self) -> None:
        dialog, self._settings_dialog = self._settings_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def open_history(self) -> HistoryDialog:
        """The event history, searchable and exportable."""
        # The history the bus writes into: no second connection (no second wait on a locked file),
        # and it shows what it holds even while it cannot be written.
        dialog = HistoryDialog(self._window.context.history, parent=self._window)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        fit_to_screen(dialog)
        self.assigner.attach_events(
            dialog.table, lambda row: dialog.events[row] if row < len(dialog.events) else None
        )
        dialog.show()
        return dialog

    def open_plugins(self) -> PluginsDialog:
        """The plugins, their health and settings."""
        dialog = PluginsDialog(
            self._window.event_bus, parent=self._window, settings=self._window.settings.plugins
        )
        dialog.plugin_settings_changed.connect(self._on_plugin_settings)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        fit_to_screen(dialog)
        dialog.show()
        return dialog

    def _on_plugin_settings(self, plugins: Any) -> None:
        self._window.apply_settings(self._window.settings.replace(plugins=plugins), save=True)

    def enroll_from_camera(self, name: str = "") -> EnrollDialog:
        """Guided enrolment from the camera; the live view pauses meanwhile (one reader per camera)."""
        was_running = self._window.controller.is_running()
        if was_running:
            self._window.controller.stop()
        dialog = EnrollDialog(
            self._window.settings, self._window.gallery_controller, name=name, parent=self._window
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        if was_running:
            dialog.finished.connect(self._window.start)
        dialog.open()
        dialog.start_capture()
        return dialog

    def about(self) -> None:
        """The About box."""
        text = f"<b>GhostFace</b> {core.__version__}<br>Real-time face recognition on an ordinary computer."
        QMessageBox.about(self._window, "About GhostFace", text)

    def close_all(self) -> None:
        """The window closes: end an open settings dialog (Cancel restores nothing any more)."""
        if self._settings_dialog is not None:
            self._settings_dialog.done(0)
