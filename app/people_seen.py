"""The Live tab's "Seen" list: everyone seen during this run, known or a numbered unknown, with last-seen time.

"In view" (app/live_panel.py) answers "who is here now"; this list answers "who was here". It is bounded:
unknown people are numbered by the engine (``Face.unknown_id``), which remembers at most a few hundred,
and an unknown face not numbered yet (a young track) is not listed at all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from PySide6.QtGui import QBrush
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from app.video_view import KNOWN_COLOUR, UNKNOWN_COLOUR, similarity_text
from core.types import Face, FrameResult

__all__ = ["PeopleSeen", "face_tooltip"]


def face_tooltip(face: Face) -> str:
    """What the people lists say about a face: the match, or why it is Unknown and who came closest."""
    if face.person is not None:
        return f"{face.person}: recognized, similarity {similarity_text(face.similarity)}."
    reason = face.match.reason
    why = reason.describe() if reason is not None else "Not compared with the gallery yet."
    return f"{face.label}: {why}"


@dataclass(slots=True)
class _Seen:
    name: str
    first_wall: float
    last_wall: float
    last_stream_s: float
    tooltip: str


class PeopleSeen(QTreeWidget):
    """Everyone seen since Start, most recently seen first; redrawn by :meth:`refresh` (on a timer)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PeopleSeen")
        self.setHeaderLabels(["Person", "First seen", "Last seen"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        width = self.fontMetrics().horizontalAdvance("00:00:00 ") + 24
        for col in (1, 2):
            self.header().setSectionResizeMode(col, QHeaderView.ResizeMode.Interactive)
            self.setColumnWidth(col, width)
        self.setToolTip("Everyone seen since Start, with the time they were last seen.")
        self._seen: dict[str, _Seen] = {}
        self._dirty = False

    def clear_people(self) -> None:
        """Forget everyone (a new run or a new source)."""
        self._seen.clear()
        self._dirty = False
        self.clear()

    def names(self) -> list[str]:
        """Every name listed, sorted."""
        return sorted(self._seen)

    def update_from(self, result: FrameResult) -> None:
        """Record who is in this result (also across the passes of a looping video)."""
        now = time.time()
        for face in result.faces:
            if face.person is None and not face.unknown_id:
                continue  # not a person yet: a young track, or one the engine did not number
            name = face.label
            entry = self._seen.get(name)
            if entry is None:
                entry = self._seen[name] = _Seen(name, now, now, result.timestamp, "")
            entry.last_wall, entry.last_stream_s, entry.tooltip = now, result.timestamp, face_tooltip(face)
            self._dirty = True

    def refresh(self) -> None:
        """Redraw the list if anyone was seen since the last redraw."""
        if not self._dirty:
            return
        self._dirty = False
        rows = sorted(self._seen.values(), key=lambda e: (-e.last_wall, e.name))
        self.setUpdatesEnabled(False)
        try:
            while self.topLevelItemCount() > len(rows):
                self.takeTopLevelItem(self.topLevelItemCount() - 1)
            for i, entry in enumerate(rows):
                item = self.topLevelItem(i) or QTreeWidgetItem(self)
                texts = [
                    entry.name,
                    time.strftime("%H:%M:%S", time.localtime(entry.first_wall)),
                    time.strftime("%H:%M:%S", time.localtime(entry.last_wall)),
                ]
                for col, text in enumerate(texts):
                    if item.text(col) != text:
                        item.setText(col, text)
                item.setToolTip(0, entry.tooltip)
                item.setToolTip(2, f"{entry.last_stream_s:.1f} s into the video")
                colour = UNKNOWN_COLOUR if entry.name.startswith("Unknown") else KNOWN_COLOUR
                if item.foreground(0).color() != colour:
                    item.setForeground(0, QBrush(colour))
        finally:
            self.setUpdatesEnabled(True)
