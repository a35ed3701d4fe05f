"""Sizes that keep a list's columns whole on a small screen or at 150 % scaling."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QStyle, QWidget

__all__ = ["columns_width", "fit_to_screen"]


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
