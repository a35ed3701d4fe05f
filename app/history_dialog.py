"""The event history window: every recorded event, filtered by person, kind and date, with CSV export.

With a shared store the history holds every station's events: a Station column and filter appear.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, time
from pathlib import Path

from PySide6.QtCore import QDate, Qt, Slot
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import (
    QComboBox,
    QDateEdit,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.events_panel import event_pixmap, kind_label, make_event_table, person_label
from core.errors import GhostFaceError
from core.history import History
from core.types import EventKind, RecognitionEvent

__all__ = ["HistoryDialog"]

log = logging.getLogger(__name__)

ALL_PEOPLE = "All people"
ALL_KINDS = "All events"
ALL_STATIONS = "All stations"


class HistoryDialog(QDialog):
    """Lists the history with filters (person, event kind, date range) and exports it as CSV.

    Args:
        history: the history to read; None opens the default one (:func:`core.paths.history_path`),
            which the dialog then closes when it is closed.
        parent: the parent widget.
        limit: most rows shown (the export has no limit).
    """

    COLUMNS = ("", "Time", "Event", "Person", "Similarity", "Source")

    def __init__(
        self, history: History | None = None, parent: QWidget | None = None, *, limit: int = 1000
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Event history")
        self.resize(760, 520)
        self._owns_history = history is None
        self.history = history if history is not None else History()
        self.limit = limit
        self.events: list[RecognitionEvent] = []
        # A shared history (core.store.shared_history) knows which station recorded each event.
        self.shared = hasattr(self.history, "query_stations")
        self.stations: list[str] = []
        self.columns = (*self.COLUMNS, "Station") if self.shared else self.COLUMNS

        filters = self._build_filters()
        self.table = make_event_table(self.columns)
        header = self.table.horizontalHeader()
        for col in range(1, len(self.columns)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)

        bottom = self._build_bottom()
        layout = QVBoxLayout(self)
        layout.addLayout(filters)
        layout.addWidget(self.table, 1)
        layout.addLayout(bottom)

        self._reset_filters()
        self.person_box.currentIndexChanged.connect(self.refresh)
        self.kind_box.currentIndexChanged.connect(self.refresh)
        self.station_box.currentIndexChanged.connect(self.refresh)
        self.from_date.dateChanged.connect(self.refresh)
        self.to_date.dateChanged.connect(self.refresh)
        self.refresh_button.clicked.connect(self.reload)
        self.reset_button.clicked.connect(self.reset_filters)
        self.export_button.clicked.connect(self._ask_export)
        self.refresh()

    def _build_filters(self) -> QHBoxLayout:
        """Person, kind and date filters, with the Show all and Refresh buttons."""
        self.person_box = QComboBox()
        self.person_box.setAccessibleName("Person")
        self.kind_box = QComboBox()
        self.kind_box.setAccessibleName("Event kind")
        self.kind_box.addItem(ALL_KINDS, None)
        for kind in EventKind:
            self.kind_box.addItem(kind_label(kind), kind)
        self.station_box = QComboBox()
        self.station_box.setAccessibleName("Station")
        self.station_box.addItem(ALL_STATIONS, None)
        self.station_box.setVisible(self.shared)
        self.from_date = QDateEdit()
        self.from_date.setCalendarPopup(True)
        self.from_date.setDisplayFormat("yyyy-MM-dd")
        self.from_date.setAccessibleName("From date")
        self.to_date = QDateEdit()
        self.to_date.setCalendarPopup(True)
        self.to_date.setDisplayFormat("yyyy-MM-dd")
        self.to_date.setAccessibleName("To date")
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the history again (new events, new people)")
        self.reset_button = QPushButton("Show all")
        self.reset_button.setToolTip("Clear the filters: every person, every event, every day")
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setToolTip("Save the events that match the filters as a CSV file")

        filters = QHBoxLayout()
        filters.addWidget(QLabel("Person"))
        filters.addWidget(self.person_box, 1)
        filters.addWidget(self.kind_box)
        filters.addWidget(self.station_box)
        filters.addWidget(QLabel("From"))
        filters.addWidget(self.from_date)
        filters.addWidget(QLabel("to"))
        filters.addWidget(self.to_date)
        filters.addWidget(self.reset_button)
        filters.addWidget(self.refresh_button)
        return filters

    def _build_bottom(self) -> QHBoxLayout:
        """The count of events shown, Export and Close."""
        self.count_label = QLabel()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        bottom = QHBoxLayout()
        bottom.addWidget(self.count_label, 1)
        bottom.addWidget(self.export_button)
        bottom.addWidget(buttons)
        return bottom

    # -- filters
    @Slot()
    def reset_filters(self) -> None:
        """Every person, every kind, from the oldest event to today; refreshes."""
        self.kind_box.blockSignals(True)
        self.kind_box.setCurrentIndex(0)
        self.kind_box.blockSignals(False)
        self.person_box.blockSignals(True)
        self.person_box.setCurrentIndex(0)
        self.person_box.blockSignals(False)
        self._reset_filters()
        self.refresh()

    def _reset_filters(self) -> None:
        self._fill_people()
        span = self.history.time_range()
        today = QDate.currentDate()
        first = QDate(datetime.fromtimestamp(span[0]).date()) if span else today
        for edit in (self.from_date, self.to_date):
            edit.blockSignals(True)
        self.from_date.setDate(min(first, today))
        self.to_date.setDate(today)
        for edit in (self.from_date, self.to_date):
            edit.blockSignals(False)

    def _fill_stations(self) -> None:
        if not self.shared:
            return
        current = self.station_box.currentData()
        self.station_box.blockSignals(True)
        self.station_box.clear()
        self.station_box.addItem(ALL_STATIONS, None)
        for station in self.history.stations():  # type: ignore[attr-defined]
            self.station_box.addItem(station, station)
        self.station_box.setCurrentIndex(max(0, self.station_box.findData(current)) if current else 0)
        self.station_box.blockSignals(False)

    def _fill_people(self) -> None:
        self._fill_stations()
        current = self.person_box.currentData()
        self.person_box.blockSignals(True)
        self.person_box.clear()
        self.person_box.addItem(ALL_PEOPLE, None)
        for person in self.history.people():
            self.person_box.addItem(person, person)
        index = self.person_box.findData(current) if current is not None else 0
        self.person_box.setCurrentIndex(max(0, index))
        self.person_box.blockSignals(False)

    def filters(self) -> dict[str, object]:
        """The filters as :meth:`core.history.History.query` arguments (dates are whole local days)."""
        since = datetime.combine(self.from_date.date().toPython(), time.min).timestamp()
        until = datetime.combine(self.to_date.date().toPython(), time.max).timestamp()
        kind = self.kind_box.currentData()
        found: dict[str, object] = {
            "person": self.person_box.currentData(),
            "since": since,
            "until": until,
            "kinds": [kind] if kind is not None else None,
        }
        if self.shared:
            found["station"] = self.station_box.currentData()
        return found

    def set_filters(
        self,
        person: str | None = None,
        kind: EventKind | None = None,
        since: QDate | None = None,
        until: QDate | None = None,
    ) -> None:
        """Set filters from code (a person's "show history" link, tests); refreshes once."""
        for w in (self.person_box, self.kind_box, self.from_date, self.to_date):
            w.blockSignals(True)
        try:
            self.person_box.setCurrentIndex(max(0, self.person_box.findData(person)) if person else 0)
            self.kind_box.setCurrentIndex(max(0, self.kind_box.findData(kind)) if kind else 0)
            if since is not None:
                self.from_date.setDate(since)
            if until is not None:
                self.to_date.setDate(until)
        finally:
            for w in (self.person_box, self.kind_box, self.from_date, self.to_date):
                w.blockSignals(False)
        self.refresh()

    # -- contents
    @Slot()
    def reload(self) -> None:
        """Read the list of people again (new events may name new ones), then refresh."""
        self._fill_people()
        if self.to_date.date() < QDate.currentDate():
            self.to_date.setDate(QDate.currentDate())  # refreshes
        else:
            self.refresh()

    @Slot()
    def refresh(self) -> None:
        """Query the history with the current filters and fill the table, or say why it cannot be read."""
        f = self.filters()
        try:
            if self.shared:
                rows = self.history.query_stations(limit=self.limit, **f)  # type: ignore[attr-defined]
                self.events, self.stations = [r.event for r in rows], [r.station for r in rows]
            else:
                self.events = self.history.query(limit=self.limit, **f)  # type: ignore[arg-type]
            total = self.history.count(**f)  # type: ignore[arg-type]
        except (sqlite3.Error, OSError, GhostFaceError) as exc:  # a bad history must not take the window down
            log.warning("history cannot be read: %s", exc)
            self.events, total = [], 0
            self.count_label.setText(f"The history cannot be read: {exc}")
        else:
            shown = len(self.events)
            text = f"{total} events" if shown == total else f"{total} events; the newest {shown} are shown"
            problem = getattr(self.history, "problem", None)
            if problem:
                text += f". {problem}"  # a locked, read-only or full history: say why new ones are missing
            self.count_label.setText(text)
        self.table.setRowCount(len(self.events))
        for row, event in enumerate(self.events):
            thumb = QTableWidgetItem()
            pixmap = event_pixmap(event)
            if not pixmap.isNull():
                thumb.setIcon(QIcon(pixmap))
            when = datetime.fromtimestamp(event.time).strftime("%Y-%m-%d %H:%M:%S")
            sim = QTableWidgetItem(f"{event.similarity:.2f}")
            sim.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            items = (
                thumb,
                QTableWidgetItem(when),
                QTableWidgetItem(kind_label(event.kind)),
                QTableWidgetItem(person_label(event)),
                sim,
                QTableWidgetItem(event.source),
            )
            if self.shared:
                items += (QTableWidgetItem(self.stations[row]),)
            for col, item in enumerate(items):
                self.table.setItem(row, col, item)
        self.export_button.setEnabled(bool(self.events))

    # -- export
    def export_csv(self, path: Path) -> int:
        """Write the events matching the filters (all of them, not only those shown); returns the count.

        Raises:
            OSError: the file cannot be written.
        """
        return self.history.export_csv(Path(path), **self.filters())  # type: ignore[arg-type]

    @Slot()
    def _ask_export(self) -> None:
        name = f"ghostface-events-{datetime.now():%Y%m%d-%H%M}.csv"
        path, _ = QFileDialog.getSaveFileName(
            self, "Export events", str(Path.home() / name), "CSV files (*.csv)"
        )
        if not path:
            return
        try:
            n = self.export_csv(Path(path))
        except OSError as exc:
            QMessageBox.warning(self, "Export events", f"Cannot write {path}: {exc.strerror or exc}")
            return
        self.count_label.setText(f"{n} events exported to {path}")

    def done(self, result: int) -> None:
        """Close the history if this dialog opened it, then close the dialog."""
        if self._owns_history:
            self.history.close()
            self._owns_history = False
        super().done(result)
