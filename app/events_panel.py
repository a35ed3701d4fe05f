"""The live tab's Events panel: the latest recognition events, newest first, with their thumbnails."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from PySide6.QtCore import QSize, Qt, Signal, Slot
from PySide6.QtGui import QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.types import EventKind, RecognitionEvent

__all__ = ["EventsPanel", "event_pixmap", "kind_label", "person_label"]

log = logging.getLogger(__name__)

ICON_PX = 48


def make_event_table(columns: Sequence[str], parent: QWidget | None = None) -> QTableWidget:
    """A read-only, row-selecting table with a thumbnail column, as the events panel and history use."""
    table = QTableWidget(0, len(columns), parent)
    table.setHorizontalHeaderLabels(list(columns))
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setIconSize(QSize(ICON_PX, ICON_PX))
    table.verticalHeader().setVisible(False)
    table.verticalHeader().setDefaultSectionSize(ICON_PX + 4)
    table.setColumnWidth(0, ICON_PX + 8)
    return table


_KIND_LABELS = {
    EventKind.RECOGNIZED: "recognized",
    EventKind.UPDATED: "updated",
    EventKind.UNKNOWN: "unknown face",
    EventKind.LEFT: "left",
}


def kind_label(kind: EventKind) -> str:
    """How an event kind reads in the GUI."""
    return _KIND_LABELS.get(kind, str(kind))


def person_label(event: RecognitionEvent) -> str:
    """The event's person, or "Unknown" for an unmatched face."""
    return event.person if event.person is not None else "Unknown"


def event_pixmap(event: RecognitionEvent) -> QPixmap:
    """The event's thumbnail (a null pixmap when it has none or it cannot be decoded)."""
    pixmap = QPixmap()
    if event.thumbnail and not pixmap.loadFromData(event.thumbnail, "JPG"):
        log.debug("event thumbnail could not be decoded")
    return pixmap


class EventsPanel(QWidget):
    """A table of the latest events: thumbnail, person, event, time, similarity.

    Mount it anywhere (it has no dependencies) and feed it from the GUI thread with
    :meth:`add_events`, e.g. from the frame-ready handler with ``list(result.events)``.

    Args:
        parent: the parent widget.
        max_rows: rows kept; the oldest go first.

    Signals:
        history_requested: the user pressed "History…" (connect it to the window's history action).
    """

    history_requested = Signal()

    COLUMNS = ("", "Person", "Event", "Time", "Similarity")

    def __init__(self, parent: QWidget | None = None, *, max_rows: int = 200) -> None:
        super().__init__(parent)
        if max_rows < 1:
            raise ValueError(f"max_rows must be at least 1, not {max_rows}")
        self.max_rows = max_rows
        self.table = make_event_table(self.COLUMNS, self)
        self.table.setObjectName("EventsTable")
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Fixed)
        self.table.setColumnWidth(0, ICON_PX + 8)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for col in (2, 3, 4):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        self.table.setAccessibleName("Recognition events, newest first")

        self.empty_label = QLabel("No events yet. People who come into view appear here.")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.history_button = QPushButton("History…")
        self.history_button.setToolTip("Every event so far, with filters and CSV export")
        self.history_button.clicked.connect(self.history_requested)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Empty this list (the history keeps every event)")
        self.clear_button.clicked.connect(self.clear_events)

        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.clear_button)
        buttons.addWidget(self.history_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.empty_label)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        self._update_empty()

    def row_count(self) -> int:
        """The number of events in the table."""
        return self.table.rowCount()

    def row_text(self, row: int) -> tuple[str, str, str, str]:
        """Person, event, time and similarity of a row (row 0 is the newest)."""
        cells = [self.table.item(row, col) for col in range(1, 5)]
        p, k, t, s = (c.text() if c is not None else "" for c in cells)
        return p, k, t, s

    @Slot(list)
    def add_events(self, events: Sequence[RecognitionEvent]) -> None:
        """Put events at the top, newest first (call on the GUI thread)."""
        if not events:
            return
        self.table.setUpdatesEnabled(False)
        try:
            for event in events:
                self._insert(event)
            while self.table.rowCount() > self.max_rows:
                self.table.removeRow(self.table.rowCount() - 1)
        finally:
            self.table.setUpdatesEnabled(True)
        self._update_empty()

    @Slot()
    def clear_events(self) -> None:
        """Remove every event from the table."""
        self.table.setRowCount(0)
        self._update_empty()

    def _insert(self, event: RecognitionEvent) -> None:
        self.table.insertRow(0)
        thumb = QTableWidgetItem()
        pixmap = event_pixmap(event)
        if not pixmap.isNull():
            thumb.setIcon(QIcon(pixmap))
        thumb.setData(Qt.ItemDataRole.UserRole, event)
        when = datetime.fromtimestamp(event.time)
        time_item = QTableWidgetItem(when.strftime("%H:%M:%S"))
        time_item.setToolTip(
            when.strftime("%Y-%m-%d %H:%M:%S") + f" · {event.stream_time:.1f} s into the source"
        )
        person = QTableWidgetItem(person_label(event))
        person.setToolTip(f"track {event.track_id} · {event.source}")
        similarity = QTableWidgetItem(f"{event.similarity:.2f}")
        similarity.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for col, item in enumerate(
            (thumb, person, QTableWidgetItem(kind_label(event.kind)), time_item, similarity)
        ):
            self.table.setItem(0, col, item)

    def _update_empty(self) -> None:
        empty = self.table.rowCount() == 0
        self.empty_label.setVisible(empty)
        self.clear_button.setEnabled(not empty)
