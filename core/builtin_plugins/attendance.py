"""Built-in plugin: an attendance log, one CSV row per person per session, rewritten atomically."""

from __future__ import annotations

import csv
import io
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from core._atomic import atomic_write_text
from core.plugins import Setting
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

    A file that cannot be written (a full disk, a read-only folder) neither loses rows nor switches
    the plugin off: the rows stay in memory (one per person, so bounded by the gallery), the writes are
    retried with a back-off of 1 s doubling to 60 s (on a timer, and with every new event), and
    :attr:`problem` says so for the Plugins dialog until the file is complete again.

    Settings:
        folder: where the files go; empty for ``<data folder>/attendance``.

    Attributes:
        unwritten: changes (events) kept in memory that the file does not show yet.
        write_failures: failed attempts to write the file, in total.
    """

    NAME = "attendance"
    SETTINGS: dict[str, Any] = {
        "folder": Setting(
            "", path="folder", help="Where the attendance files go; empty: the attendance folder of GhostFace."
        ),
    }

    # Back-off between attempts to write a file that could not be written (seconds): doubles up to the maximum.
    RETRY_FIRST_S = 1.0
    RETRY_MAX_S = 60.0

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}
        self._path: Path | None = None
        self._station = ""
        self.unwritten = 0
        self.write_failures = 0
        # The retry timer writes from a thread of its own; the lock keeps it and the hooks apart.
        self._lock = threading.RLock()
        self._backoff_s = 0.0
        self._retry_at = 0.0
        self._timer: threading.Timer | None = None
        self._error: str | None = None  # why the last write failed, until one succeeds

    @property
    def problem(self) -> str | None:
        """A sentence for the user while the CSV cannot be written, else None."""
        error = self._error
        if error is None:
            return None
        return f"cannot write {self._path}: {error}; {self.unwritten} changes kept in memory, retried"

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
        station = str(extras.get("station", "") or "")
        safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in station)[:60]
        path = folder / (f"attendance-{safe}-{stamp}.csv" if safe else f"attendance-{stamp}.csv")
        with self._lock:
            if path != self._path:
                # A restart with new settings in the same session keeps the rows of that session.
                if not self._flush(force=True):  # the last chance for the rows of the old file
                    log.error("attendance: %d changes could not be written to %s", self.unwritten, self._path)
                self._rows = {}
                self.unwritten = 0
            self._path = path
            self._station = station
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
        with self._lock:
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
            self.unwritten += 1
            self._flush(force=False)

    def on_stop(self) -> None:
        """Write the rows one last time; log what could not be written."""
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if self._path is not None and self._rows and not self._flush(force=True):
                log.error("attendance: %d changes could not be written to %s", self.unwritten, self._path)

    def rows(self) -> list[dict[str, str]]:
        """The rows as they are written, in order of first sighting."""
        with self._lock:
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

    def _flush(self, *, force: bool) -> bool:
        """Write the file if anything changed and the back-off allows; True when it is complete."""
        if self._path is None or not self.unwritten:
            return True
        now = time.monotonic()
        if not force and now < self._retry_at:
            return False
        try:
            self._write()
        except OSError as exc:  # ENOSPC, EDQUOT, EROFS, EACCES, EIO: the rows wait in memory
            self.write_failures += 1
            self._backoff_s = min(self.RETRY_MAX_S, max(self.RETRY_FIRST_S, self._backoff_s * 2))
            self._retry_at = now + self._backoff_s
            first = self._error is None
            self._error = str(exc.strerror or exc)
            if first:
                log.warning("attendance: %s", self.problem)
            self._schedule_retry(self._backoff_s)
            return False
        if self._error is not None:
            log.warning("attendance: %s can be written again (%d changes written)", self._path, self.unwritten)
        self._error = None
        self.unwritten = 0
        self._backoff_s = self._retry_at = 0.0
        return True

    def _schedule_retry(self, delay_s: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(delay_s, self._retry)
        self._timer.daemon = True  # a retry never keeps the process alive
        self._timer.start()

    def _retry(self) -> None:
        with self._lock:
            self._timer = None
            self._flush(force=True)

    def _write(self) -> None:
        assert self._path is not None
        buf = io.StringIO()
        columns = STATION_COLUMNS if self._station else COLUMNS
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows())
        atomic_write_text(self._path, buf.getvalue())
