"""Sizes that keep a list's columns whole on a small screen or at 150 % scaling."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHeaderView,
    QScrollArea,
    QStyle,
    QToolBar,
    QVBoxLayout,
    QWidget,
)

__all__ = ["columns_width", "fit_to_screen", "keep_toolbars_whole", "scrolling_page"]


def columns_width(view: QAbstractItemView, stretch_px: int) -> int:
    """The width ``view`` needs to show every column whole.

    Fixed columns count as set, ``stretch_px`` for each stretching one, the last column (which takes
    what is left) its header's width; plus the frame and a vertical scroll bar.
    """
    header = view.findChild(QHeaderView)
    if header is None:
        return stretch_px
    total = 0
    for index in range(header.count()):
        if header.isSectionHidden(index):
            continue
        if header.sectionResizeMode(index) == QHeaderView.ResizeMode.Stretch:
            total += stretch_px
        elif index == header.count() - 1 and header.stretchLastSection():
            total += max(header.sectionSizeHint(index), header.minimumSectionSize())
        else:
            total += header.sectionSize(index)
    scrollbar = view.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, view)
    return total + scrollbar + 2 * view.frameWidth() + 4


def fit_to_screen(widget: QWidget) -> None:
    """Shrink ``widget`` (a dialog sized for a large screen) to the available area of its screen."""
    screen = widget.screen()
    if screen is None:
        return
    available = screen.availableGeometry().size()
    if widget.width() > available.width() or widget.height() > available.height():
        widget.resize(widget.size().boundedTo(available))


def scrolling_page(page: QWidget, content: QWidget) -> QScrollArea:
    """Make ``content`` all of ``page``, in a frameless scroll area without margins.

    A page taller than a small screen (768 pixels at 150 %) scrolls instead of setting the window's
    smallest height or being clipped.
    """
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setWidget(content)
    outer = QVBoxLayout(page)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return scroll


class _ToolbarFitter(QObject):
    """Shows a toolbar's buttons as icons only (their text in the tooltip) when text does not fit."""

    def __init__(self, toolbar: QToolBar) -> None:
        super().__init__(toolbar)
        self._toolbar = toolbar
        self._style = toolbar.toolButtonStyle()
        toolbar.ensurePolished()
        self._full_width = toolbar.sizeHint().width()
        toolbar.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt naming
        """On a resize, pick text beside the icons or icons alone."""
        if watched is self._toolbar and event.type() == QEvent.Type.Resize:
            fits = self._toolbar.width() >= self._full_width
            style = self._style if fits else Qt.ToolButtonStyle.ToolButtonIconOnly
            if self._toolbar.toolButtonStyle() != style:
                self._toolbar.setToolButtonStyle(style)
        return False


def keep_toolbars_whole(window: QWidget) -> None:
    """Let every toolbar in ``window`` drop its buttons' text rather than hide buttons in an overflow menu.

    The main toolbar keeps its text (it is short and sized for a small screen); the others, built with
    text beside the icons for a large screen, fall back to icons alone when narrower.
    """
    for toolbar in window.findChildren(QToolBar):
        if toolbar.objectName() != "MainToolbar" and not toolbar.findChild(_ToolbarFitter):
            _ToolbarFitter(toolbar)
