"""Built-in plugin: an attendance log, one CSV row per person per session, rewritten atomically."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core._atomic import atomic_write_text
from core.types import EventKind, RecognitionEvent

__all__ = ["COLUMNS", "STATION_COLUMNS", "AttendanceLog"]

log = logging.getLogger(__name__)

COLUMNS = ("person", "first_seen", "last_seen", "duration_s")
# With a shared store each station's log says which station (door) saw the person.
STATION_COLUMNS = (*COLUMNS, "station")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


@dataclass(slots=True)
class _Row:
    first_seen: float
    last_seen: float
    source: str
    first_stream: float
    last_stream: float
    # Stream times measure the duration only while every event comes from one source, in order.
    same_stream: bool = True

    @property
    def duration(self) -> float:
        if self.same_stream:
            return max(0.0, self.last_stream - self.first_stream)
        return max(0.0, self.last_seen - self.first_seen)


class AttendanceLog:
    """Who was there, from when to when: ``person, first_seen, last_seen, duration_s``.

    One file per session (``<folder>/attendance-<session start>.csv``), one row per person, updated
    from ``recognized`` and ``left`` events (``left`` carries the last sighting) and written
    atomically after every change, so the file is always complete. Times are local ISO-8601 wall
    clock; the duration is measured on the video position when all of a person's events come from
    one source (exact for a video file processed faster than real time), else on the wall clock.

    With a shared store (the bus context's ``extras["station"]``) the file is
    ``attendance-<station>-<session start>.csv`` and has a ``station`` column, so the logs of several
    doors can be put side by side.

    Settings:
        folder: where the files go; empty for ``<data folder>/attendance``.
    """

    NAME = "attendance"
    SETTINGS: dict[str, Any] = {"folder": ""}

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._path: Path | None = None
        self._station = ""

    @property
    def path(self) -> Path | None:
        """The CSV of this session (None before ``on_start``)."""
        return self._path

    def on_start(self, context: Any) -> None:
        """Pick this session's CSV file, in the chosen folder or the app's ``attendance`` folder."""
        folder_text = str(context.settings.get("folder", "") or "").strip()
        folder = Path(folder_text).expanduser() if folder_text else Path(context.app_data_dir) / "attendance"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.fromtimestamp(context.session_started).strftime("%Y%m%d-%H%M%S")
        extras = getattr(context, "extras", None) or {}
        self._station = str(extras.get("station", "") or "")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in self._station)[:60]
        path = folder / (f"attendance-{safe}-{stamp}.csv" if safe else f"attendance-{stamp}.csv")
        if path != self._path:
            # A restart with new settings in the same session keeps the rows of that session.
            self._rows = {}
        self._path = path
        log.info("attendance log: %s", path)

    def on_event(self, event: RecognitionEvent) -> None:
        """Record when a known person was first and last seen, and rewrite the CSV.

        Raises:
            RuntimeError: the plugin was not started.
        """
        if event.person is None or event.kind not in (EventKind.RECOGNIZED, EventKind.LEFT):
            return
        if self._path is None:
            raise RuntimeError("the attendance log got an event before on_start")
        row = self._rows.get(event.person)
        if row is None:
            self._rows[event.person] = _Row(
                event.time, event.time, event.source, event.stream_time, event.stream_time
            )
        else:
            if event.source != row.source or event.stream_time < row.first_stream:
                row.same_stream = False
            row.first_seen = min(row.first_seen, event.time)
            row.last_seen = max(row.last_seen, event.time)
            row.last_stream = max(row.last_stream, event.stream_time)
        self._write()

    def on_stop(self) -> None:
        """Write the rows one last time."""
        if self._path is not None and self._rows:
            self._write()

    def rows(self) -> list[dict[str, str]]:
        """The rows as they are written, in order of first sighting."""
        ordered = sorted(self._rows.items(), key=lambda item: item[1].first_seen)
        station = {"station": self._station} if self._station else {}
        return [
            {
                "person": person,
                "first_seen": _iso(row.first_seen),
                "last_seen": _iso(row.last_seen),
                "duration_s": f"{row.duration:.2f}",
                **station,
            }
            for person, row in ordered
        ]

    def _write(self) -> None:
        assert self._path is not None
        buf = io.StringIO()
        columns = STATION_COLUMNS if self._station else COLUMNS
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        atomic_write_text(self._path, buf.getvalue())
