"""The app's icons, from ``resources/icons``, drawn in the colour of the theme in use.

The icons' line colour (``#d0d7de``, light, for the dark theme) is swapped for a dark one under the
light theme when each icon is painted, so a theme switch redraws them without rebuilding any action.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QRect, QRectF, QSize, Qt
from PySide6.QtGui import QIcon, QIconEngine, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer

__all__ = ["RESOURCES", "icon", "set_icon_theme"]

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
_LINE = "#d0d7de"  # the line colour the icon files are drawn in
_LINE_BY_THEME = {"dark": _LINE, "light": "#57606a"}
_theme = "dark"


def set_icon_theme(theme: str) -> None:
    """Draw the icons for ``theme`` (``dark`` or ``light``) from now on (widgets repaint on a restyle)."""
    global _theme
    _theme = theme if theme in _LINE_BY_THEME else "dark"


class _ThemedSvg(QIconEngine):
    """An SVG icon whose line colour follows the theme at paint time."""

    def __init__(self, svg: str) -> None:
        super().__init__()
        self._svg = svg
        self._renderers: dict[str, QSvgRenderer] = {}
        # Drawn once per theme, size and mode: a toolbar repaints its icons often, the SVG never changes.
        self._pixmaps: dict[tuple[str, int, int, QIcon.Mode], QPixmap] = {}

    def _renderer(self) -> QSvgRenderer:
        if _theme not in self._renderers:
            text = self._svg.replace(_LINE, _LINE_BY_THEME[_theme])
            self._renderers[_theme] = QSvgRenderer(QByteArray(text.encode("utf-8")))
        return self._renderers[_theme]

    def paint(self, painter: QPainter, rect: QRect, mode: QIcon.Mode, state: QIcon.State) -> None:
        """Draw the icon into ``rect``; a disabled icon at half opacity."""
        painter.save()
        if mode == QIcon.Mode.Disabled:
            painter.setOpacity(0.4)
        self._renderer().render(painter, QRectF(rect))
        painter.restore()

    def pixmap(self, size: QSize, mode: QIcon.Mode, state: QIcon.State) -> QPixmap:
        """The icon drawn at ``size``."""
        key = (_theme, size.width(), size.height(), mode)
        if key in self._pixmaps:
            return self._pixmaps[key]
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.transparent)
        painter = QPainter(pixmap)
        self.paint(painter, QRect(0, 0, size.width(), size.height()), mode, state)
        painter.end()
        self._pixmaps[key] = pixmap
        return pixmap

    def clone(self) -> QIconEngine:
        """A copy (Qt copies engines when an icon is detached)."""
        return _ThemedSvg(self._svg)


def icon(name: str) -> QIcon:
    """An icon from ``resources/icons`` (an empty icon if the file is missing)."""
    path = RESOURCES / "icons" / f"{name}.svg"
    try:
        return QIcon(_ThemedSvg(path.read_text(encoding="utf-8")))
    except OSError:
        return QIcon()
