"""Diagnostics' "Why Unknown" list: for each unknown face in view, who came closest and what held them back."""

from __future__ import annotations

import time

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

from core.types import FrameResult, HeldBack, UnknownReason

__all__ = ["RULE_NAMES", "UnknownReasonsView"]

# The rule that held a candidate back, as the list names it.
RULE_NAMES: dict[HeldBack, str] = {
    HeldBack.NO_GALLERY: "empty gallery",
    HeldBack.THRESHOLD: "similarity threshold",
    HeldBack.MARGIN: "top-1/top-2 margin",
    HeldBack.VOTES: "votes",
}
# Milliseconds between two redraws: the latest frame is kept, the list redrawn at most this often.
REFRESH_MS = 500
# Seconds a face stays listed after it was last seen unknown: faces come and go between samples.
KEEP_S = 3.0


class UnknownReasonsView(QTreeWidget):
    """The unknown people in view (seen in the last few seconds): best candidate, similarity, rule, reason."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("UnknownReasons")
        self.setHeaderLabels(["Face", "Best candidate", "Similarity", "Held back by", "Why"])
        self.setRootIsDecorated(False)
        self.setUniformRowHeights(True)
        self.header().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.setToolTip(
            "Why each face in view is Unknown: the closest gallery person and the rule that held it back"
        )
        self._latest: FrameResult | None = None
        self._faces: dict[str, tuple[UnknownReason, float]] = {}  # label -> (reason, monotonic time)
        self._timer = QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()

    def show_result(self, result: FrameResult) -> None:
        """Keep the latest frame's faces; drawn at the next refresh."""
        self._latest = result

    def rows(self) -> list[list[str]]:
        """The texts of the rows shown (for tests)."""
        return [[self.topLevelItem(i).text(c) for c in range(5)] for i in range(self.topLevelItemCount())]

    def refresh(self) -> None:
        """Redraw from the latest frame, if a new one came and the list is on screen."""
        if self._latest is None or not self.isVisible():
            return  # the latest frame waits until the list is shown
        result, self._latest = self._latest, None
        now = time.monotonic()
        for face in result.faces:
            if face.person is None and face.match.reason is not None and face.unknown_id:
                self._faces[face.label] = (face.match.reason, now)
        self._faces = {k: v for k, v in self._faces.items() if now - v[1] <= KEEP_S}
        self.clear()
        for label, (reason, _seen) in sorted(self._faces.items()):
            item = QTreeWidgetItem(
                [
                    label,
                    reason.candidate or "–",
                    f"{reason.similarity:.2f}" if reason.candidate else "–",
                    RULE_NAMES[reason.rule],
                    reason.describe(),
                ]
            )
            item.setToolTip(4, reason.describe())
            self.addTopLevelItem(item)
