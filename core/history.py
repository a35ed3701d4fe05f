"""The event history: every recognition event, with its thumbnail, in an SQLite log with retention.

The history is fed by the :class:`core.events.EventBus` like a plugin (:meth:`History.recorder` gives
the internal subscriber), so that SQLite writes happen on a dispatch thread of their own, never on the
capture thread, and a slow disk only drops history rows (counted), never frames. The GUI reads from its
own thread: one connection guarded by a lock serves both, and WAL mode lets other processes read while
it writes.

Only a damaged database (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) is moved aside
(``history.sqlite3.corrupt-<time>``) and a new one created; :attr:`History.recovered_from` says so, for
the GUI to show. A database that is locked by another program, read-only, or on a full disk is healthy
and stays where it is: it is opened read-only (or, failing that, an empty in-memory one stands in), and
the events that cannot be written are kept in memory (at most ``max_pending``) and written, oldest
first, as soon as the database takes them again (retried with back-off). :attr:`History.problem` says
what is wrong while it lasts. The file and its -wal/-shm are private to the user (0600).
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
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

from core import paths
from core._atomic import atomic_write_text
from core._perms import make_private_dir, private_file
from core._sqlite import SqliteProblem, classify, describe, prepare_private_db, rollback_quietly
from core.plugins import LoadedPlugin, Origin
from core.types import EventKind, RecognitionEvent

__all__ = [
    "CSV_COLUMNS",
    "History",
    "HistoryRecorder",
    "csv_fields",
    "event_from_row",
    "recorder_plugin",
    "where_clause",
    "write_csv",
]

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
        busy_timeout_s: how long to wait for a lock another program holds before giving up.
        max_pending: how many events to keep in memory while the database cannot be written; beyond
            that the oldest are dropped (counted in :attr:`lost`).

    Attributes:
        recovered_from: where a corrupt database found at open was moved, else None.
        read_only: the database could not be opened for writing (locked, read-only, full disk); new
            events wait in memory.
        problem: a sentence for the user while the history cannot be written, else None.
        lost: events dropped because more than ``max_pending`` waited.
    """

    # Back-off between attempts to write events kept in memory (seconds): doubles up to the maximum.
    RETRY_FIRST_S = 1.0
    RETRY_MAX_S = 60.0

    def __init__(
        self, path: Path | None = None, *, busy_timeout_s: float = 10.0, max_pending: int = 5000
    ) -> None:
        self.path = Path(path) if path is not None else paths.history_path()
        self.recovered_from: Path | None = None
        self.read_only = False
        self.problem: str | None = None
        self.lost = 0
        self._busy_timeout_s = float(busy_timeout_s)
        self._pending: deque[RecognitionEvent] = deque()
        self._max_pending = max(1, int(max_pending))
        self._retry_at = 0.0
        self._backoff_s = 0.0
        self._lock = threading.RLock()
        try:
            make_private_dir(self.path.parent)
            self._conn = self._open(self._busy_timeout_s)
        except (sqlite3.DatabaseError, OSError) as exc:
            self._conn = self._recover(exc)

    def _recover(self, exc: BaseException) -> sqlite3.Connection:
        """A damaged database is moved aside and started afresh; anything else is left where it is."""
        if isinstance(exc, sqlite3.DatabaseError) and classify(exc) is SqliteProblem.CORRUPT:
            try:
                self.recovered_from = self._move_aside(exc)
                return self._open(self._busy_timeout_s)
            except (sqlite3.DatabaseError, OSError) as again:  # a damaged file on a read-only disk
                exc = again
        return self._open_fallback(exc)

    # -- opening
    def _open(self, timeout_s: float) -> sqlite3.Connection:
        prepare_private_db(self.path)
        conn = sqlite3.connect(self.path, timeout=timeout_s, check_same_thread=False, isolation_level=None)
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
        # The WAL and shared-memory files exist now; they take the database's mode, but an older
        # installation may have left them world-readable.
        prepare_private_db(self.path)
        return conn

    def _open_fallback(self, exc: BaseException) -> sqlite3.Connection:
        """A healthy database that cannot be written: read it if possible, keep new events in memory."""
        if isinstance(exc, sqlite3.Error):
            reason = describe(exc)
        else:
            where = getattr(exc, "filename", None) or self.path.parent
            reason = f"{getattr(exc, 'strerror', None) or exc} ({where})"
        self.read_only = True
        self.problem = (
            f"The event history {self.path} cannot be written: {reason}. New events are kept in memory "
            "and written as soon as it can be."
        )
        log.warning("%s", self.problem)
        if self.path.is_file():
            where = quote(str(self.path.resolve()))
            # immutable=1 reads a database on a read-only file system whose -shm cannot be created; it
            # is not safe while another program writes, so it is only a last resort for a locked file.
            for params in ("mode=ro", "immutable=1"):
                try:
                    conn = sqlite3.connect(
                        f"file:{where}?{params}",
                        uri=True,
                        timeout=min(self._busy_timeout_s, 1.0),
                        check_same_thread=False,
                        isolation_level=None,
                    )
                except sqlite3.Error:
                    continue
                try:
                    conn.execute("SELECT COUNT(*) FROM events").fetchone()
                except sqlite3.Error:
                    conn.close()
                    continue
                log.info("history %s opened read-only (%s)", self.path, params)
                return conn
        conn = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        conn.executescript(_SCHEMA)
        return conn

    def _move_aside(self, exc: BaseException) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
            n += 1
        self.path.replace(target)
        private_file(target)
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.path.name + suffix)
            if side.exists():
                side.replace(target.with_name(target.name + suffix))
                private_file(target.with_name(target.name + suffix))
        log.warning(
            "history %s could not be read (%s); moved to %s and started afresh", self.path, exc, target
        )
        return target

    def close(self) -> None:
        """Write the events kept in memory if it can, then close the database.

        Further calls raise ``sqlite3.ProgrammingError``.
        """
        with self._lock:
            if self._pending and not self._flush_locked(force=True):
                log.error(
                    "history %s: %d events could not be written and are lost (%s)",
                    self.path,
                    len(self._pending),
                    self.problem,
                )
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
                rollback_quietly(self._conn)
                raise
        return ids

    @property
    def pending(self) -> int:
        """Events kept in memory because the database could not take them yet."""
        with self._lock:
            return len(self._pending)

    def record(self, events: Iterable[RecognitionEvent]) -> bool:
        """Store events, or keep them in memory when the database cannot take them now.

        Unlike :meth:`extend` this never raises for a database that is full, locked, read-only or
        failing: the events wait in memory, oldest first, and are written by a later call once the
        database takes them again (attempts are spaced by a back-off of 1 s doubling to 60 s).

        Returns:
            True when every event (those kept before too) is in the database.
        """
        with self._lock:
            self._pending.extend(events)
            overflow = len(self._pending) - self._max_pending
            if overflow > 0:
                for _ in range(overflow):
                    self._pending.popleft()
                self.lost += overflow
                log.error(
                    "history: %d events waiting for %s; the oldest %d were dropped (%d so far)",
                    self._max_pending,
                    self.path,
                    overflow,
                    self.lost,
                )
            return self._flush_locked(force=False)

    def flush_pending(self) -> bool:
        """Try now (whatever the back-off) to write the events kept in memory; True when none is left."""
        with self._lock:
            return self._flush_locked(force=True)

    def _flush_locked(self, *, force: bool) -> bool:
        if not self._pending:
            return True
        now = time.monotonic()
        if not force and now < self._retry_at:
            return False
        try:
            if self.read_only:
                # A short wait: this runs on the history's dispatch thread, which must not stall long.
                conn = self._open(min(self._busy_timeout_s, 1.0))
                self._conn.close()
                self._conn = conn
                self.read_only = False
            self.extend(list(self._pending))
        except (sqlite3.Error, OSError) as exc:
            self._backoff_s = min(self.RETRY_MAX_S, max(self.RETRY_FIRST_S, self._backoff_s * 2))
            self._retry_at = now + self._backoff_s
            reason = describe(exc) if isinstance(exc, sqlite3.Error) else str(exc)
            problem = (
                f"The event history {self.path} cannot be written: {reason}. {len(self._pending)} "
                "events are kept in memory and will be written as soon as it can be."
            )
            if self.problem is None or reason not in self.problem:
                log.warning("%s", problem)
            self.problem = problem
            return False
        written = len(self._pending)
        self._pending.clear()
        self._backoff_s = 0.0
        self._retry_at = 0.0
        if self.problem is not None:
            log.warning(
                "history %s can be written again: %d events kept in memory were written", self.path, written
            )
            self.problem = None
        return True

    # -- reading
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
        where, args = where_clause(person, since, until, kinds, mark="?")
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
        return [event_from_row(row) for row in rows]

    def count(
        self,
        person: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kinds: Sequence[EventKind | str] | None = None,
    ) -> int:
        """How many events match (same filters as :meth:`query`)."""
        where, args = where_clause(person, since, until, kinds, mark="?")
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
        return write_csv(path, CSV_COLUMNS, (csv_fields(e) for e in events))

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
        return recorder_plugin(self, max_days, max_mb, str(self.path))


def recorder_plugin(
    history: History, max_days: float | None, max_mb: float | None, location: str
) -> LoadedPlugin:
    """The internal ``history`` subscriber writing into ``history`` (either store), found at ``location``."""
    return LoadedPlugin(
        name="history",
        origin=Origin.INTERNAL,
        plugin=HistoryRecorder(history, max_days, max_mb),
        settings=MappingProxyType({}),
        enabled=True,
        location=location,
    )


def where_clause(
    person: str | None,
    since: float | None,
    until: float | None,
    kinds: Sequence[EventKind | str] | None,
    *,
    mark: str,
    equal: Sequence[tuple[str, Any]] = (),
) -> tuple[str, list[Any]]:
    """The ``WHERE`` clause and its arguments for the event filters both histories take.

    Args:
        person: only this person's events.
        since: wall-clock seconds, inclusive.
        until: wall-clock seconds, inclusive.
        kinds: only these kinds (an empty list matches nothing).
        mark: the driver's parameter placeholder (``?`` for SQLite, ``%s`` for psycopg).
        equal: further ``(column, value)`` filters; a None value does not filter.

    Returns:
        ``(" WHERE ...", args)``, or ``("", [])`` when nothing filters.

    Raises:
        ValueError: a kind that is not an :class:`EventKind`.
    """
    clauses: list[str] = []
    args: list[Any] = []
    for column, op, value in (
        ("person", "=", person),
        ("time", ">=", None if since is None else float(since)),
        ("time", "<=", None if until is None else float(until)),
        *((column, "=", value) for column, value in equal),
    ):
        if value is not None:
            clauses.append(f"{column} {op} {mark}")
            args.append(value)
    if kinds is not None:
        values = [str(EventKind(k)) for k in kinds]
        # "1 = 0" rather than an empty IN list, which PostgreSQL does not accept.
        clauses.append(f"kind IN ({', '.join([mark] * len(values))})" if values else "1 = 0")
        args.extend(values)
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def event_from_row(row: Sequence[Any]) -> RecognitionEvent:
    """An event from a row of the events table, in :data:`CSV_COLUMNS` order plus ``api_version``, ``thumbnail``.

    The shared store's rows go on with ``visit_id``, ``first_seen``, ``duration_s`` and ``source_label``
    (the SQLite history does not keep them: they take their defaults).
    """
    t, kind, person, sim, source, track, frame, stream, box, api, thumb = row[:11]
    x1, y1, x2, y2 = (float(v) for v in json.loads(box))
    visit: dict[str, Any] = {}
    if len(row) > 11:
        visit_id, first, duration, label = row[11:]
        visit = {
            "visit_id": visit_id,
            "first_seen": float(first),
            "duration_s": float(duration),
            "source_label": label,
        }
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
        **visit,
    )


def csv_fields(event: RecognitionEvent) -> list[Any]:
    """An event's CSV fields, in :data:`CSV_COLUMNS` order; times are local ISO-8601."""
    e = event
    return [
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


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write a header and rows as CSV, atomically; the number of rows (the header not counted)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(row)
        count += 1
    atomic_write_text(Path(path), buf.getvalue())
    return count


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
        """Apply the retention limits once at start."""
        del context
        self._prune()

    def on_event(self, event: RecognitionEvent) -> None:
        """Write the event into the history, pruning every ``prune_every`` events."""
        # record() keeps what cannot be written and retries: a full or locked disk must neither lose
        # events nor count as plugin failures (which would switch the history off for the session).
        self.history.record([event])
        self._count += 1
        if self._count % self.prune_every == 0:
            self._prune()

    def on_stop(self) -> None:
        """Write what is still pending; log how many events are lost if that fails."""
        if not self.history.flush_pending():
            log.error(
                "history: %d events could not be written before stopping (%s)",
                self.history.pending,
                self.history.problem,
            )

    def _prune(self) -> None:
        if self.history.read_only:
            return
        try:
            self.history.prune(self.max_days, self.max_mb)
        except sqlite3.Error as exc:
            # Deleting needs room in the WAL too; retention waits for the next round.
            log.warning("history: old events not removed now (%s)", describe(exc))
