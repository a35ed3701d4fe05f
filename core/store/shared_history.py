"""The event history on a PostgreSQL server: every station's events in one table, with a local outbox.

Each event gets its id (a UUID) when it is recorded and goes first into a small SQLite outbox in the
station's data folder (``outbox-<station>.sqlite3``), then, oldest first, to the server, on a thread of
its own. An event leaves the outbox only after the server has committed it; the server ignores an id it
already has (``ON CONFLICT DO NOTHING``), so a delivery cut short and tried again never writes an event
twice. While the server is unreachable recognition goes on, the outbox grows, and
:attr:`SharedHistory.problem` says so; when the server is back the outbox drains in order.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from core import paths
from core._perms import make_private_dir
from core._sqlite import prepare_private_db
from core.history import CSV_COLUMNS, csv_fields, event_from_row, recorder_plugin, where_clause, write_csv
from core.plugins import LoadedPlugin
from core.store import postgres as pg
from core.store.base import StoreError, StoreUnreachable
from core.types import EventKind, RecognitionEvent

__all__ = ["STATION_CSV_COLUMNS", "SharedHistory", "StationEvent"]

log = logging.getLogger(__name__)

STATION_CSV_COLUMNS = (*CSV_COLUMNS, "station")
# Events sent to the server per transaction.
_BATCH = 200
# Seconds a read waits for a connection, and how long after a failed read the next fail at once.
_READ_WAIT_S = 1.5
_READ_BACKOFF_S = 3.0
# Seconds one delivery may run on the server (a lock, an overloaded server) before it is cancelled there and
# tried again later: without it an INSERT the server never answers holds the outbox, and closing, for ever.
_SEND_TIMEOUT_S = 15.0
# Seconds close() gives the last delivery in all; what is not delivered by then waits for the next start.
_CLOSE_WAIT_S = 5.0
_EVENT_COLUMNS = (
    "event_id, station, time, kind, person, similarity, source, track_id, frame_index, stream_time, box,"
    " api_version, thumbnail, visit_id, first_seen, duration_s, source_label"
)
_OUTBOX_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL UNIQUE,
    payload TEXT NOT NULL,
    thumbnail BLOB
);
"""


class StationEvent(tuple[str, RecognitionEvent]):
    """An event with the station that recorded it: ``(station, event)``."""

    @property
    def station(self) -> str:
        """The station's name."""
        return self[0]

    @property
    def event(self) -> RecognitionEvent:
        """The event."""
        return self[1]


def _payload(event: RecognitionEvent) -> str:
    return json.dumps(
        {
            "time": float(event.time),
            "kind": str(event.kind),
            "person": event.person,
            "similarity": float(event.similarity),
            "source": event.source,
            "track_id": int(event.track_id),
            "frame_index": int(event.frame_index),
            "stream_time": float(event.stream_time),
            "box": [round(float(v), 2) for v in event.box],
            "api_version": int(event.api_version),
            "visit_id": event.visit_id,
            "first_seen": float(event.first_seen),
            "duration_s": float(event.duration_s),
            "source_label": event.source_label,
        }
    )


class SharedHistory:
    """Recognition events of every station, on the server; this station's wait in a local outbox.

    Thread-safe. Satisfies :class:`core.store.base.EventStore`.

    Args:
        conninfo: the server.
        station: this station's name, written with each of its events.
        outbox_path: the outbox file; default ``<data folder>/outbox-<station>.sqlite3``.
        retry_s: seconds between delivery attempts while the server is unreachable.
        check_now: check the server's schema before returning (up to the connect timeout for a server
            that does not answer). False leaves the check to the outbox thread, before its first
            delivery: for a caller that must not wait, such as the app's GUI thread.

    Attributes:
        problem: a sentence for the user while events cannot reach the server, else None.
        read_only: always False (the outbox takes events even when the server does not).
        delivered: events this station delivered to the server since it started.
        left_in_outbox: events still in the outbox when it was closed.

    Raises:
        StoreError: with ``check_now``, the server's schema does not fit this station (an unreachable
            server, or a misfit found later, only sets :attr:`problem`: the events wait in the outbox).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        station: str,
        outbox_path: Path | None = None,
        retry_s: float = 1.0,
        check_now: bool = True,
    ) -> None:
        self.conninfo = conninfo
        self.where = pg.redact(conninfo)
        self.station = station
        self.path = outbox_path or paths.data_dir() / f"outbox-{_file_safe(station)}.sqlite3"
        self.problem: str | None = None
        self.read_only = False
        self.lost = 0
        self.delivered = 0
        self.left_in_outbox = 0
        self._read_failure: tuple[float, str] | None = None
        self.recovered_from: Path | None = None
        self._retry_s = retry_s
        self._lock = threading.RLock()  # the outbox connection
        self._send_lock = threading.Lock()  # one delivery at a time
        self._sending: Any = None  # the connection of the delivery under way (close() may cancel it)
        self._closed = False
        make_private_dir(self.path.parent)
        prepare_private_db(self.path)
        self._outbox = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._outbox.execute("PRAGMA journal_mode=WAL")
        self._outbox.executescript(_OUTBOX_SCHEMA)
        prepare_private_db(self.path)
        self._schema_ok = False
        if check_now:
            self._check_schema(raise_mismatch=True)
        self._pool = pg.open_pool(conninfo, station=station, max_size=2)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._deliver_loop, name="store-outbox", daemon=True)
        self._thread.start()

    # --------------------------------------------------------------------------------- writing

    def record(self, events: Iterable[RecognitionEvent]) -> bool:
        """Put events in the outbox (never raises for the server); they are delivered in order.

        Returns:
            True when nothing waits (every event is on the server already).
        """
        rows = [
            (str(uuid.uuid4()), _payload(e), sqlite3.Binary(e.thumbnail) if e.thumbnail else None)
            for e in events
        ]
        with self._lock:
            self._outbox.execute("BEGIN IMMEDIATE")
            try:
                self._outbox.executemany(
                    "INSERT INTO outbox(event_id, payload, thumbnail) VALUES (?, ?, ?)", rows
                )
                self._outbox.execute("COMMIT")
            except BaseException:
                # Ctrl-C may land between BEGIN and COMMIT: never leave the shared connection in a
                # transaction (every later write would fail, and closing would roll the outbox back).
                if self._outbox.in_transaction:
                    self._outbox.execute("ROLLBACK")
                raise
        self._wake.set()
        return self.pending == 0

    def append(self, event: RecognitionEvent) -> None:
        """Record one event (delivered by the outbox thread)."""
        self.record([event])

    @property
    def pending(self) -> int:
        """Events in the outbox, not yet on the server."""
        with self._lock:
            return int(self._outbox.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def flush_pending(self, timeout_s: float = 5.0) -> bool:
        """Deliver the outbox now, trying for up to ``timeout_s`` (each wait bounded by it); True when empty."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._deliver(deadline):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def _check_schema(self, *, raise_mismatch: bool) -> bool:
        """Whether the server's schema fits this station (checked once; False while it cannot be reached).

        A schema that does not fit raises with ``raise_mismatch``; otherwise it becomes :attr:`problem`
        and the events wait in the outbox, as for an unreachable server, until an administrator migrates it.
        """
        try:
            with pg.connect(self.conninfo) as conn:
                pg.check_schema(conn, self.where)
        except StoreUnreachable as exc:
            # Recognition starts all the same: events wait in the outbox until the server answers.
            self._server_away(exc)
            return False
        except StoreError as exc:
            if raise_mismatch:
                raise
            problem = f"{exc} Recognition goes on; {self.pending} events wait on this computer."
            if problem != self.problem:
                log.warning("%s", problem)
            self.problem = problem
            return False
        self._schema_ok = True
        return True

    def _deliver_loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._retry_s)
            self._wake.clear()
            if self._stop.is_set():
                break
            self._deliver()

    def _deliver(self, deadline: float | None = None) -> bool:
        """Send the outbox to the server in order, a batch per transaction; True when it is empty.

        With a ``deadline`` (monotonic time) no wait goes past it: not for the delivery under way on the
        outbox thread, the pool, nor the server.
        """
        import psycopg
        from psycopg_pool import PoolTimeout

        lock_wait = -1.0 if deadline is None else max(0.0, deadline - time.monotonic())
        if not self._send_lock.acquire(timeout=lock_wait):
            return False  # the outbox thread's delivery is still under way
        try:
            # A station opened without waiting for the server (the app, on its GUI thread) checks here.
            if not self._schema_ok and not self._check_schema(raise_mismatch=False):
                return False
            while True:
                with self._lock:
                    if self._closed:
                        return False
                    batch = self._outbox.execute(
                        "SELECT seq, event_id, payload, thumbnail FROM outbox ORDER BY seq LIMIT ?", (_BATCH,)
                    ).fetchall()
                if not batch:
                    self._server_back()
                    return True
                try:
                    self._send(batch, deadline)
                except (psycopg.Error, PoolTimeout, StoreError) as exc:
                    self._server_away(exc)
                    return False
                with self._lock:
                    if self._closed:
                        # Committed on the server but still in the closed outbox: sent again at the next
                        # start, where the server ignores the ids it has.
                        return False
                    self._outbox.execute("DELETE FROM outbox WHERE seq <= ?", (batch[-1][0],))
                self.delivered += len(batch)
        finally:
            self._send_lock.release()

    def _send(self, batch: list[tuple[int, str, str, bytes | None]], deadline: float | None = None) -> None:
        rows = []
        for _seq, event_id, payload, thumb in batch:
            p = json.loads(payload)
            rows.append(
                (
                    event_id,
                    self.station,
                    p["time"],
                    p["kind"],
                    p["person"],
                    p["similarity"],
                    p["source"],
                    p["track_id"],
                    p["frame_index"],
                    p["stream_time"],
                    json.dumps(p["box"]),
                    p["api_version"],
                    thumb,
                    p["visit_id"],
                    p["first_seen"],
                    p["duration_s"],
                    p["source_label"],
                )
            )
        # While the server is known to be away a short wait will do: the loop tries again anyway.
        wait, statement_s = (1.0 if self.problem else pg.CONNECT_TIMEOUT_S), _SEND_TIMEOUT_S
        if deadline is not None:
            left = max(0.5, deadline - time.monotonic())
            wait, statement_s = min(wait, left), min(statement_s, left)
        with self._pool.connection(timeout=wait) as conn, conn.transaction():
            self._sending = conn
            try:
                conn.execute(f"SET LOCAL statement_timeout = {int(statement_s * 1000)}")
                with conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO events ({_EVENT_COLUMNS}) VALUES ({', '.join(['%s'] * 17)})"
                        " ON CONFLICT (event_id) DO NOTHING",
                        rows,
                    )
            finally:
                self._sending = None

    def _server_away(self, exc: BaseException) -> None:
        reason = (pg.describe_error(exc) if str(exc) else "it does not answer").removeprefix(
            f"cannot connect to the shared store {self.where}: "
        )
        problem = (
            f"The shared store {self.where} cannot be reached ({reason}). Recognition goes on; "
            f"{self.pending} events wait on this computer and are sent when it is back."
        )
        if self.problem is None:
            log.warning("%s", problem)
        self.problem = problem

    def _server_back(self) -> None:
        if self.problem is not None:
            log.warning(
                "the shared store %s is reachable again: the waiting events were delivered", self.where
            )
            self.problem = None

    def close(self) -> None:
        """Deliver what waits (a few seconds at most), stop, and close; undelivered events stay in the outbox.

        Every wait is bounded (``_CLOSE_WAIT_S`` in all, plus a second per pool thread), whatever the server
        does: a station must stop promptly on Ctrl-C even when its server takes a query and never answers.
        """
        deadline = time.monotonic() + _CLOSE_WAIT_S
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=_CLOSE_WAIT_S / 2)
        if self._thread.is_alive():
            # A delivery the server does not answer: cancel it there (it rolls back; the events stay).
            self._cancel_sending()
            self._thread.join(timeout=max(0.0, deadline - time.monotonic()))
        # With the server away (the last attempt failed) another try would only delay closing.
        remaining = max(0.0, deadline - time.monotonic())
        if self.pending and (self.problem is not None or not self.flush_pending(timeout_s=remaining)):
            log.warning(
                "%d events could not reach %s; they stay in %s and are sent at the next start",
                self.pending,
                self.where,
                self.path,
            )
        with self._lock:
            self.left_in_outbox = int(self._outbox.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
            self._closed = True
        self._pool.close(timeout=1.0)
        with self._lock:
            self._outbox.close()

    def _cancel_sending(self) -> None:
        conn = self._sending
        if conn is None:
            return
        try:
            conn.cancel_safe(timeout=1.0)
        except Exception as exc:  # noqa: BLE001 - closing goes on; the events stay in the outbox
            log.debug("store: cancelling the delivery under way failed: %s", exc)

    def __enter__(self) -> SharedHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --------------------------------------------------------------------------------- reading

    def _fetch(self, sql: str, args: Sequence[Any]) -> list[Any]:
        """Rows of one read.

        The History window reads on the GUI thread: once the server is found away, the next reads fail
        at once (for ``_READ_BACKOFF_S``) instead of each waiting for a connection.
        """
        import psycopg
        from psycopg_pool import PoolTimeout

        failed = self._read_failure
        if failed is not None and time.monotonic() - failed[0] < _READ_BACKOFF_S:
            raise StoreError(failed[1])
        try:
            with self._pool.connection(timeout=_READ_WAIT_S) as conn:
                rows = list(conn.execute(sql, args).fetchall())
        except (psycopg.OperationalError, PoolTimeout) as exc:
            message = f"the shared history on {self.where} cannot be read now: {pg.describe_error(exc)}"
            self._read_failure = (time.monotonic(), message)
            raise StoreError(message) from None
        except psycopg.Error as exc:
            # A station opened without checking first (the app) may meet a schema it does not know: the
            # History window gets one clear line, as for an unreachable server, not a database traceback.
            message = f"the shared history on {self.where} cannot be read: {exc}".strip()
            raise StoreError(message) from None
        self._read_failure = None
        return rows

    def query_stations(
        self,
        person: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kinds: Sequence[EventKind | str] | None = None,
        limit: int | None = 1000,
        *,
        newest_first: bool = True,
        thumbnails: bool = True,
        station: str | None = None,
    ) -> list[StationEvent]:
        """Events matching every filter, each with its station (filters as :meth:`query`, plus ``station``).

        Raises:
            StoreError: the server cannot be reached.
        """
        where, args = where_clause(person, since, until, kinds, mark="%s", equal=[("station", station)])
        order = "DESC" if newest_first else "ASC"
        thumb = "thumbnail" if thumbnails else "NULL"
        sql = (
            "SELECT station, time, kind, person, similarity, source, track_id, frame_index, stream_time, box,"
            f" api_version, {thumb}, visit_id, first_seen, duration_s, source_label FROM events{where}"
            f" ORDER BY time {order}, received_at {order}"
        )
        if limit is not None:
            sql += " LIMIT %s"
            args.append(max(0, int(limit)))
        return [StationEvent((row[0], event_from_row(row[1:]))) for row in self._fetch(sql, args)]

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
        station: str | None = None,
    ) -> list[RecognitionEvent]:
        """Events matching every filter given (as :meth:`core.history.History.query`, plus ``station``)."""
        rows = self.query_stations(
            person,
            since,
            until,
            kinds,
            limit,
            newest_first=newest_first,
            thumbnails=thumbnails,
            station=station,
        )
        return [r.event for r in rows]

    def count(
        self,
        person: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kinds: Sequence[EventKind | str] | None = None,
        station: str | None = None,
    ) -> int:
        """How many events match."""
        where, args = where_clause(person, since, until, kinds, mark="%s", equal=[("station", station)])
        return int(self._fetch(f"SELECT COUNT(*) FROM events{where}", args)[0][0])

    def _listing(self, sql: str) -> list[Any]:
        """Rows for a filter's choices; none while the server is away (the query then says why)."""
        try:
            return self._fetch(sql, ())
        except StoreError as exc:
            log.warning("%s", exc)
            return []

    def people(self) -> list[str]:
        """Every person with at least one event, sorted (none while the server cannot be reached)."""
        rows = self._listing("SELECT DISTINCT person FROM events WHERE person IS NOT NULL ORDER BY person")
        return [r[0] for r in rows]

    def stations(self) -> list[str]:
        """Every station with at least one event, sorted (none while the server cannot be reached)."""
        return [r[0] for r in self._listing("SELECT DISTINCT station FROM events ORDER BY station")]

    def time_range(self) -> tuple[float, float] | None:
        """Wall-clock time of the oldest and newest event, or None when empty or unreachable."""
        rows = self._listing("SELECT MIN(time), MAX(time) FROM events")
        if not rows or rows[0][0] is None:
            return None
        return float(rows[0][0]), float(rows[0][1])

    def export_csv(
        self,
        path: Path,
        person: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kinds: Sequence[EventKind | str] | None = None,
        station: str | None = None,
    ) -> int:
        """Write the matching events, oldest first, as CSV (:data:`STATION_CSV_COLUMNS`); atomic."""
        rows = self.query_stations(
            person, since, until, kinds, None, newest_first=False, thumbnails=False, station=station
        )
        return write_csv(path, STATION_CSV_COLUMNS, ([*csv_fields(e), name] for name, e in rows))

    # ------------------------------------------------------------------------------- retention

    def size_bytes(self) -> int:
        """Bytes of this station's outbox (the server's table is the site's, not the station's)."""
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def prune(self, max_days: float | None = None, max_mb: float | None = None) -> int:
        """Nothing: the shared history's retention is the site's, kept by its administrator (docs/stations.md)."""
        del max_days, max_mb
        return 0

    def recorder(self, max_days: float | None = None, max_mb: float | None = None) -> LoadedPlugin:
        """The internal subscriber that writes every event the bus publishes into this history."""
        return recorder_plugin(self, max_days, max_mb, self.where)  # type: ignore[arg-type]


def _file_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or "station"
