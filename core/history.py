"""The event history: every recognition event, with its thumbnail, in an SQLite log with retention.

The history is fed by the :class:`core.events.EventBus` like a plugin (:meth:`History.recorder` gives
the internal subscriber), so that SQLite writes happen on a dispatch thread of their own, never on the
capture thread, and a slow disk only drops history rows (counted), never frames. The GUI reads from its
own thread: one connection guarded by a lock serves both, and WAL mode lets other processes read while
it writes. A database that cannot be read is moved aside (``history.sqlite3.corrupt-<time>``) and a new
one is created, with a warning.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from core import paths
from core._atomic import atomic_write_text
from core.plugins import LoadedPlugin, Origin
from core.types import EventKind, RecognitionEvent

__all__ = ["CSV_COLUMNS", "History", "HistoryRecorder"]

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CSV_COLUMNS = (
    "time",
    "kind",
    "person",
    "similarity",
    "source",
    "track_id",
    "frame_index",
    "stream_time",
    "box",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time REAL NOT NULL,
    kind TEXT NOT NULL,
    person TEXT,
    similarity REAL NOT NULL,
    source TEXT NOT NULL,
    track_id INTEGER NOT NULL,
    frame_index INTEGER NOT NULL,
    stream_time REAL NOT NULL,
    box TEXT NOT NULL,
    api_version INTEGER NOT NULL,
    thumbnail BLOB
);
CREATE INDEX IF NOT EXISTS events_time ON events(time);
CREATE INDEX IF NOT EXISTS events_person_time ON events(person, time);
"""


class History:
    """An SQLite log of recognition events.

    Thread-safe: every method may be called from any thread.

    Args:
        path: the database file; default :func:`core.paths.history_path`.

    Attributes:
        recovered_from: where a corrupt database found at open was moved, else None.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path is not None else paths.history_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.recovered_from: Path | None = None
        self._lock = threading.RLock()
        try:
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            self.recovered_from = self._move_aside(exc)
            self._conn = self._open()

    # -- opening
    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False, isolation_level=None)
        try:
            # Reading the schema is the first thing to fail on a file that is not a database.
            ok = conn.execute("PRAGMA quick_check(1)").fetchone()
            if ok is None or ok[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {ok[0] if ok else 'no answer'}")
            # Incremental vacuum must be chosen before the first table exists; then prune can shrink.
            conn.execute("PRAGMA auto_vacuum=INCREMENTAL")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version > SCHEMA_VERSION:
                log.warning(
                    "history %s has schema %d, newer than %d; reading it anyway",
                    self.path,
                    version,
                    SCHEMA_VERSION,
                )
        except BaseException:
            conn.close()
            raise
        return conn

    def _move_aside(self, exc: BaseException) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        self.path.replace(target)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.replace(target.with_name(target.name + suffix))
        log.warning(
            "history %s could not be read (%s); moved to %s and started afresh", self.path, exc, target
        )
        return target

    def close(self) -> None:
        """Close the database (further calls raise ``sqlite3.ProgrammingError``)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing
    def append(self, event: RecognitionEvent) -> int:
        """Store one event (in its own transaction); returns its row id."""
        return self.extend([event])[-1]

    def extend(self, events: Iterable[RecognitionEvent]) -> list[int]:
        """Store several events in one transaction; returns their row ids."""
        rows = [
            (
                float(e.time),
                str(e.kind),
                e.person,
                float(e.similarity),
                e.source,
                int(e.track_id),
                int(e.frame_index),
                float(e.stream_time),
                json.dumps([round(float(v), 2) for v in e.box]),
                int(e.api_version),
                sqlite3.Binary(e.thumbnail) if e.thumbnail else None,
            )
            for e in events
        ]
        ids: list[int] = []
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    cur = self._conn.execute(
                        "INSERT INTO events (time, kind, person, similarity, source, track_id, frame_index,"
                        " stream_time, box, api_version, thumbnail) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        row,
                    )
                    ids.append(int(cur.lastrowid or 0))
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return ids

    # -- reading
    @staticmethod
    def _where(
        person: str | None,
        since: float | None,
        until: float | None,
        kinds: Sequence[EventKind | str] | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        if person is not None:
            clauses.append("person = ?")
            args.append(person)
        if since is not None:
            clauses.append("time >= ?")
            args.append(float(since))
        if until is not None:
            clauses.append("time <= ?")
            args.append(float(until))
        if kinds is not None:
            values = [str(EventKind(k)) for k in kinds]
            if not values:
                clauses.append("0")
            else:
                clauses.append(f"kind IN ({','.join('?' * len(values))})")
                args.extend(values)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", args

    def query(
        self,
        person: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kinds: Sequence[EventKind | str] | None = None,
        limit: int | None = 1000,
        *,
        newest_first: bool = True,
        thumbnails: bool = True,
    ) -> list[RecognitionEvent]:
        """Events matching every filter given.

        Args:
            person: only this person's events.
            since: wall-clock seconds, inclusive.
            until: wall-clock seconds, inclusive.
            kinds: only these kinds (an empty list matches nothing).
            limit: at most this many (None: all).
            newest_first: order by time, newest first (else oldest first).
            thumbnails: load the thumbnails (False leaves them empty, for a quick listing).

        Raises:
            ValueError: a kind that is not an :class:`EventKind`.
        """
        where, args = self._where(person, since, until, kinds)
        order = "DESC" if newest_first else "ASC"
        thumb = "thumbnail" if thumbnails else "NULL"
        sql = (
            "SELECT time, kind, person, similarity, source, track_id, frame_index, stream_time, box,"
            f" api_version, {thumb} FROM events{where} ORDER BY time {order}, id {order}"
        )
        if limit is not None:
            sql += " LIMIT ?"
            args.append(max(0, int(limit)))
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [self._event(row) for row in rows]

    @staticmethod
    def _event(row: Sequence[Any]) -> RecognitionEvent:
        t, kind, person, sim, source, track, frame, stream, box, api, thumb = row
        x1, y1, x2, y2 = (float(v) for v in json.loads(box))
        return RecognitionEvent(
            kind=EventKind(kind),
            time=float(t),
            source=source,
            track_id=int(track),
            person=person,
            similarity=float(sim),
            box=(x1, y1, x2, y2),
            thumbnail=bytes(thumb) if thumb else b"",
            frame_index=int(frame),
            stream_time=float(stream),
            api_version=int(api),
        )

    def count(
        self,
        person: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kinds: Sequence[EventKind | str] | None = None,
    ) -> int:
        """How many events match (same filters as :meth:`query`)."""
        where, args = self._where(person, since, until, kinds)
        with self._lock:
            return int(self._conn.execute(f"SELECT COUNT(*) FROM events{where}", args).fetchone()[0])

    def people(self) -> list[str]:
        """Every person with at least one event, sorted."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT DISTINCT person FROM events WHERE person IS NOT NULL ORDER BY person"
            ).fetchall()
        return [r[0] for r in rows]

    def time_range(self) -> tuple[float, float] | None:
        """Wall-clock time of the oldest and newest event, or None when empty."""
        with self._lock:
            lo, hi = self._conn.execute("SELECT MIN(time), MAX(time) FROM events").fetchone()
        return None if lo is None else (float(lo), float(hi))

    def export_csv(
        self,
        path: Path,
        person: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kinds: Sequence[EventKind | str] | None = None,
    ) -> int:
        """Write the matching events, oldest first, as CSV (:data:`CSV_COLUMNS`); atomic.

        Times are local ISO-8601. Returns the number of rows written.
        """
        events = self.query(person, since, until, kinds, limit=None, newest_first=False, thumbnails=False)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for e in events:
            writer.writerow(
                [
                    datetime.fromtimestamp(e.time).astimezone().isoformat(timespec="milliseconds"),
                    str(e.kind),
                    e.person or "",
                    f"{e.similarity:.4f}",
                    e.source,
                    e.track_id,
                    e.frame_index,
                    f"{e.stream_time:.3f}",
                    " ".join(f"{v:.1f}" for v in e.box),
                ]
            )
        atomic_write_text(Path(path), buf.getvalue())
        return len(events)

    # -- retention
    def size_bytes(self) -> int:
        """Bytes the events use (pages in use; the file can be larger until it is vacuumed)."""
        with self._lock:
            page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
            pages = self._conn.execute("PRAGMA page_count").fetchone()[0]
            free = self._conn.execute("PRAGMA freelist_count").fetchone()[0]
        return int((pages - free) * page_size)

    def prune(self, max_days: float | None = None, max_mb: float | None = None) -> int:
        """Remove events older than ``max_days``, then the oldest until it uses at most ``max_mb``.

        The freed space is given back to the file system. Returns the number of events removed.
        """
        removed = 0
        with self._lock:
            if max_days is not None:
                cutoff = time.time() - float(max_days) * 86400.0
                removed += self._conn.execute("DELETE FROM events WHERE time < ?", (cutoff,)).rowcount
            if max_mb is not None:
                limit = float(max_mb) * 1024 * 1024
                for _ in range(20):  # each round removes about what is needed; a few rounds settle it
                    used = self.size_bytes()
                    total = self._conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
                    if used <= limit or total == 0:
                        break
                    per_row = used / total
                    excess = math.ceil((used - limit) / per_row) + 1
                    removed += self._conn.execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM events ORDER BY time, id LIMIT ?)",
                        (min(total, excess),),
                    ).rowcount
                    self._conn.execute("PRAGMA incremental_vacuum")
            if removed:
                self._conn.execute("PRAGMA incremental_vacuum")
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                log.info("history: %d old events removed", removed)
        return removed

    def recorder(self, max_days: float | None = None, max_mb: float | None = None) -> LoadedPlugin:
        """The internal subscriber that writes every event the bus publishes into this history.

        Args:
            max_days: retention by age, applied at start and every 500 events.
            max_mb: retention by size, applied at the same times.
        """
        return LoadedPlugin(
            name="history",
            origin=Origin.INTERNAL,
            plugin=HistoryRecorder(self, max_days, max_mb),
            settings=MappingProxyType({}),
            enabled=True,
            location=str(self.path),
        )


@dataclass
class HistoryRecorder:
    """Appends each event to a :class:`History`; prunes at start and every ``prune_every`` events."""

    history: History
    max_days: float | None = None
    max_mb: float | None = None
    prune_every: int = 500
    _count: int = 0

    NAME = "history"

    def on_start(self, context: object) -> None:
        del context
        self.history.prune(self.max_days, self.max_mb)

    def on_event(self, event: RecognitionEvent) -> None:
        self.history.append(event)
        self._count += 1
        if self._count % self.prune_every == 0:
            self.history.prune(self.max_days, self.max_mb)
