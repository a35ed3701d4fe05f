"""The window's look: a dark theme, a light one, or whichever the system uses (setting ``ui.theme``).

A theme is a Qt style sheet in ``resources``; ``@ICONS@`` in it stands for the icons folder, since a
style sheet's relative ``url()`` would be read from the working directory, not from beside the sheet.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication

from app.icons import RESOURCES, set_icon_theme

__all__ = ["THEMES", "apply_theme", "resolve_theme", "style_sheet"]

log = logging.getLogger(__name__)

# The setting's values and the labels the settings dialog shows for them.
THEMES: dict[str, str] = {"dark": "Dark", "light": "Light", "system": "Follow the system"}
_SHEETS = {"dark": "style.qss", "light": "light.qss"}


def resolve_theme(theme: str) -> str:
    """``dark`` or ``light``: ``system`` becomes the system's colour scheme (dark when it says none)."""
    if theme in _SHEETS:
        return theme
    scheme = QGuiApplication.styleHints().colorScheme()
    return "light" if scheme == Qt.ColorScheme.Light else "dark"


def style_sheet(theme: str) -> str:
    """The style sheet of ``theme`` (``dark``, ``light`` or ``system``), its icon paths filled in."""
    path = RESOURCES / _SHEETS[resolve_theme(theme)]
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:  # a broken install: Qt's own look is still usable
        log.warning("theme %s not applied: %s", theme, exc)
        return ""
    return text.replace("@ICONS@", (RESOURCES / "icons").as_posix())


class ThemeFollower(QObject):
    """Applies ``ui.theme`` to the application, and again when the system switches light/dark mode."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.theme = ""
        self.applied = ""
        QGuiApplication.styleHints().colorSchemeChanged.connect(self._system_changed)

    def apply(self, theme: str) -> None:
        """Use ``theme`` now (nothing is redrawn when it is already the one in use)."""
        self.theme = theme
        self.applied = resolve_theme(theme)
        set_icon_theme(self.applied)
        app = QApplication.instance()
        sheet = style_sheet(self.applied)
        # Setting a sheet restyles every widget: only when it is another one.
        if isinstance(app, QApplication) and app.styleSheet() != sheet:
            app.setStyleSheet(sheet)

    def _system_changed(self, *_: object) -> None:
        if self.theme == "system":
            self.apply(self.theme)


_follower: ThemeFollower | None = None


def apply_theme(theme: str) -> str:
    """Use ``theme`` from now on (``system`` keeps following the system); returns ``dark`` or ``light``."""
    global _follower
    if _follower is None:
        _follower = ThemeFollower(QApplication.instance())
    _follower.apply(theme)
    return _follower.applied
