"""The main window's actions, menus and toolbar, in one place: what a user can do and its shortcut."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QComboBox, QLabel, QMainWindow, QMenu

from app.help_menu import fill_help_menu
from app.icons import icon

__all__ = ["WindowActions", "build_actions"]


@dataclass(frozen=True)
class WindowActions:
    """The actions a test or the window refers to by name, and the widgets the source picker fills."""

    start: QAction
    open_video: QAction
    open_folder: QAction
    settings: QAction
    fullscreen: QAction
    quit: QAction
    history: QAction
    plugins: QAction
    gallery_folder: QAction
    diagnostics: QAction
    about: QAction
    source_combo: QComboBox
    camera_menu: QMenu


def _toggle_fullscreen(window: QMainWindow, action: QAction) -> None:
    """What F11 does."""
    window.showNormal() if window.isFullScreen() else window.showFullScreen()
    action.setChecked(window.isFullScreen())


def build_actions(window: QMainWindow, slots: dict[str, Callable[..., Any]]) -> WindowActions:
    """Make the actions (each slot from ``slots`` by action name), the menu bar and the toolbar."""

    def action(name: str, text: str, shortcut: Any = None, icon_name: str = "", tip: str = "") -> QAction:
        act = QAction(icon(icon_name) if icon_name else QIcon(), text, window)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.setToolTip(tip or text.replace("&", "").rstrip("…"))
        act.triggered.connect(slots[name])
        window.addAction(act)
        return act

    slots = {"fullscreen": lambda: _toggle_fullscreen(window, fullscreen), **slots}
    start = action("start", "&Start", Qt.Key.Key_Space, "play", "Start or stop (Space)")
    open_video = action("open_video", "&Open video…", QKeySequence.StandardKey.Open, "open")
    open_folder = action("open_folder", "Open image &folder…", None, "folder")
    settings = action("settings", "&Settings…", QKeySequence("Ctrl+,"), "settings", "Settings (Ctrl+,)")
    fullscreen = action("fullscreen", "&Full screen", Qt.Key.Key_F11, "fullscreen")
    fullscreen.setCheckable(True)
    quit_ = action("quit", "&Quit", QKeySequence("Ctrl+Q"), "", "Quit (Ctrl+Q)")
    history = action("history", "Event &history…", QKeySequence("Ctrl+H"), "history")
    plugins = action("plugins", "&Plugins…", None, "plugins")
    gallery_folder = action("gallery_folder", "Open &gallery folder", None, "folder")
    diagnostics = action("diagnostics", "&Diagnostics", None, "diagnostics")
    about = action("about", "&About GhostFace")

    menu = window.menuBar()
    file_menu = menu.addMenu("&File")
    file_menu.addActions([open_video, open_folder])
    camera_menu = file_menu.addMenu(icon("camera"), "&Camera")
    file_menu.addSeparator()
    file_menu.addAction(gallery_folder)
    file_menu.addSeparator()
    file_menu.addAction(quit_)
    menu.addMenu("&View").addActions([start, fullscreen, diagnostics])
    menu.addMenu("&Tools").addActions([settings, history, plugins])
    fill_help_menu(menu.addMenu("&Help"), window, about)

    toolbar = window.addToolBar("Main")
    toolbar.setObjectName("MainToolbar")
    toolbar.setMovable(False)
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    toolbar.addAction(start)
    source_combo = QComboBox()
    source_combo.setObjectName("SourceCombo")
    source_combo.setMinimumWidth(260)
    source_combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    source_combo.setToolTip("What to watch: a camera, a video file or a folder of images")
    toolbar.addWidget(QLabel(" Source: "))
    toolbar.addWidget(source_combo)
    toolbar.addAction(open_video)
    toolbar.addSeparator()
    toolbar.addAction(settings)
    return WindowActions(
        start, open_video, open_folder, settings, fullscreen, quit_, history, plugins, gallery_folder,
        diagnostics, about, source_combo, camera_menu,
    )  # fmt: skip
