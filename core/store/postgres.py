"""The shared store on a PostgreSQL server: connecting, the schema and its migrations, the roles.

A station names its server with a libpq connection string or URL (``postgresql://door1@db.lan/ghostface``
or ``service=ghostface``). The password never sits in GhostFace's settings: libpq reads it from its
passfile (``~/.pgpass``, or ``PGPASSFILE``) or a service file (``~/.pg_service.conf``, ``PGSERVICEFILE``);
TLS options such as ``sslmode=verify-full`` go in the URL and are passed through to libpq untouched.

The schema is created and upgraded by numbered SQL files (``migrations/0001_*.sql``, ...), each applied
in one transaction together with its row in ``schema_version``. A station refuses a server whose schema is
newer than it knows, and asks for ``ghostface store migrate`` when it is older.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from core.store.base import StoreError, StoreUnreachable

__all__ = [
    "GALLERY_CHANNEL",
    "SCHEMA_VERSION",
    "GalleryListener",
    "Migration",
    "apply_migrations",
    "check_schema",
    "connect",
    "create_roles",
    "describe_error",
    "describe_server",
    "migrations",
    "open_pool",
    "redact",
    "strip_password",
]

log = logging.getLogger(__name__)

GALLERY_CHANNEL = "ghostface_gallery"
# Seconds libpq waits for a server before a station says it is unreachable.
CONNECT_TIMEOUT_S = 3
# Any constant will do: it keeps two `store migrate` runs from applying the same file twice.
_MIGRATION_LOCK = 0x6768_6F73_7466


def _psycopg() -> Any:
    """psycopg, imported on first use (the embedded mode never loads it)."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise StoreError(f"the shared store needs psycopg 3 ({exc}); reinstall GhostFace") from exc
    return psycopg


@dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file of ``core/store/migrations``."""

    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """Every migration shipped with this version of GhostFace, in order."""
    found = []
    for entry in resources.files("core.store").joinpath("migrations").iterdir():
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise StoreError("the schema migrations shipped with GhostFace are not numbered 1, 2, 3, ...")
    return found


SCHEMA_VERSION = len(migrations())


def strip_password(conninfo: str) -> tuple[str, bool]:
    """``conninfo`` without a password, and whether it held one (settings must never keep one)."""
    if not conninfo.strip():
        return "", False
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        params = conninfo_to_dict(conninfo)
    except _psycopg().ProgrammingError as exc:
        raise StoreError(f"the store address is not a valid PostgreSQL connection string: {exc}") from None
    if "password" not in params:
        return conninfo, False
    params.pop("password")
    if conninfo.strip().startswith(("postgresql://", "postgres://")):
        return _as_url(params), True
    return make_conninfo("", **params), True


def _as_url(params: dict[str, Any]) -> str:
    from urllib.parse import quote, urlencode

    user = quote(str(params.pop("user", "")), safe="")
    host = str(params.pop("host", ""))
    port = params.pop("port", None)
    dbname = quote(str(params.pop("dbname", "")), safe="")
    where = f"{user}@" if user else ""
    where += host + (f":{port}" if port else "")
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{where}/{dbname}{query}"


def redact(conninfo: str) -> str:
    """The connection string for a message or a log: ``user@host:port/dbname``, never a password."""
    try:
        from psycopg.conninfo import conninfo_to_dict

        p = conninfo_to_dict(conninfo)
    except Exception:  # noqa: BLE001 - a string that does not parse is shown as "the server"
        return "the server"
    if "service" in p and "host" not in p:
        return f"service {p['service']}"
    where = f"{p['user']}@" if p.get("user") else ""
    where += str(p.get("host") or "localhost") + (f":{p['port']}" if p.get("port") else "")
    return where + (f"/{p['dbname']}" if p.get("dbname") else "")


def describe_error(exc: BaseException) -> str:
    """One line a person can act on, from psycopg's multi-line messages."""
    text = " ".join(str(exc).split())
    text = re.sub(r"^connection failed: ", "", text)
    # libpq repeats "connection to server at ... failed:" per address tried; the cause is what follows.
    text = re.sub(r'connection to server (at|on socket) "[^"]*"(, port \d+)? failed: ', "", text)
    text = text.replace("FATAL: ", "")
    return text or type(exc).__name__


def connect(conninfo: str, *, autocommit: bool = False, application_name: str = "ghostface") -> Any:
    """One connection to the server; a clear :class:`StoreError` when it cannot be made.

    Raises:
        StoreUnreachable: the server is unreachable, refuses the log-in, or the string is invalid.
    """
    psycopg = _psycopg()
    try:
        return psycopg.connect(
            conninfo,
            autocommit=autocommit,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name=application_name,
        )
    except (psycopg.OperationalError, psycopg.ProgrammingError) as exc:
        raise StoreUnreachable(
            f"cannot connect to the shared store {redact(conninfo)}: {describe_error(exc)}"
        ) from None


def open_pool(conninfo: str, *, station: str, max_size: int = 4) -> Any:
    """A psycopg connection pool (opened; broken connections are checked and replaced on use)."""
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(
        conninfo,
        min_size=1,
        max_size=max_size,
        kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": f"ghostface {station}"[:63]},
        check=ConnectionPool.check_connection,
        open=False,
        name=f"ghostface-{station}",
    )
    pool.open(wait=False)
    return pool


def _current_version(conn: Any) -> int | None:
    """The server's schema version, or None when GhostFace's tables do not exist there."""
    row = conn.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not row[0]:
        return None
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def check_schema(conn: Any, where: str = "the server") -> int:
    """The server's schema version, when this station can work with it.

    Raises:
        StoreError: no schema yet, an older one (``store migrate``), or a newer one (update GhostFace).
    """
    if SCHEMA_VERSION == 0:
        raise StoreError("this installation of GhostFace lacks its schema files (core/store/migrations)")
    version = _current_version(conn)
    conn.rollback()
    if version is None:
        raise StoreError(f"{where} has no GhostFace schema yet: run 'ghostface store init' once")
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} has GhostFace schema version {version}, newer than this station's {SCHEMA_VERSION}: "
            "update GhostFace on this station before connecting it"
        )
    if version < SCHEMA_VERSION:
        raise StoreError(
            f"{where} has GhostFace schema version {version}, older than this station's {SCHEMA_VERSION}: "
            "run 'ghostface store migrate' as the database owner"
        )
    return version


def describe_server(conninfo: str) -> str:
    """A sentence for a connection test: who this station is on the server, and what it may do.

    Raises:
        StoreError: unreachable, log-in refused, or a schema this station cannot use.
    """
    where = redact(conninfo)
    with connect(conninfo) as conn:
        version = check_schema(conn, where)
        user, admin = conn.execute("SELECT current_user, has_table_privilege('people', 'UPDATE')").fetchone()
    may = "may change the gallery (admin)" if admin else "recognizes and records events (station)"
    return f"Connected to {where} as {user}: schema version {version}; this station {may}."


def apply_migrations(conn: Any, target: int | None = None) -> list[int]:
    """Bring the schema up to ``target`` (default: the newest known), one transaction per file.

    Returns:
        the versions applied now (empty when it was up to date).

    Raises:
        StoreError: the server's schema is newer than this GhostFace, or a migration failed (that
            migration is rolled back whole; the ones before it stay).
    """
    target = SCHEMA_VERSION if target is None else target
    applied: list[int] = []
    psycopg = _psycopg()
    conn.rollback()
    with conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_version ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    for migration in migrations():
        if migration.version > target:
            break
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
                current = _current_version(conn) or 0
                if current > SCHEMA_VERSION:
                    raise StoreError(
                        f"the server has GhostFace schema version {current}, newer than this "
                        f"GhostFace's {SCHEMA_VERSION}: use a newer GhostFace to manage it"
                    )
                if migration.version <= current:
                    continue
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_version(version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
        except psycopg.Error as exc:
            raise StoreError(
                f"schema migration {migration.version:04d}_{migration.name} failed and was rolled back: "
                f"{describe_error(exc)}"
            ) from None
        applied.append(migration.version)
        log.info("store: schema migration %04d_%s applied", migration.version, migration.name)
    return applied


def create_roles(conn: Any) -> None:
    """Create ``ghostface_admin`` and ``ghostface_station`` (when missing) and grant their rights.

    Raises:
        StoreError: the user may not create roles or grant on GhostFace's tables.
    """
    psycopg = _psycopg()
    sql = resources.files("core.store").joinpath("roles.sql").read_text(encoding="utf-8")
    try:
        with conn.transaction():
            conn.execute(sql)
    except psycopg.Error as exc:
        raise StoreError(f"the roles could not be created: {describe_error(exc)}") from None


def grant_if_roles_exist(conn: Any) -> bool:
    """Re-apply the grants after a migration when the roles exist (new tables need them)."""
    row = conn.execute(
        "SELECT COUNT(*) FROM pg_roles WHERE rolname IN ('ghostface_admin', 'ghostface_station')"
    ).fetchone()
    conn.rollback()
    if int(row[0]) < 2:
        return False
    create_roles(conn)
    return True


class GalleryListener:
    """Listens for gallery changes on the server (LISTEN/NOTIFY) and calls ``on_change`` for each burst.

    Runs on a daemon thread with a connection of its own. When the connection is lost it reconnects
    (every second) and calls ``on_change`` once connected again, since notifications sent meanwhile
    are gone.

    Args:
        conninfo: the server.
        on_change: called on the listener's thread; it must not use the caller's models.
        station: for the connection's application name.
    """

    def __init__(self, conninfo: str, on_change: Callable[[], object], *, station: str = "") -> None:
        self._conninfo = conninfo
        self._on_change = on_change
        self._station = station
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="store-listener", daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Wait until the listener is connected (True) or ``timeout`` passed."""
        return self._ready.wait(timeout)

    def _run(self) -> None:
        psycopg = _psycopg()
        missed = False
        while not self._stop.is_set():
            try:
                conn = connect(self._conninfo, autocommit=True, application_name=f"ghostface {self._station}")
            except StoreError as exc:
                log.debug("store listener: %s", exc)
                self._stop.wait(1.0)
                missed = True
                continue
            try:
                with conn:
                    conn.execute(f"LISTEN {GALLERY_CHANNEL}")
                    self._ready.set()
                    if missed:
                        self._notify()
                    missed = self._listen(conn)
            except psycopg.Error as exc:
                log.warning("store listener: connection lost (%s); reconnecting", describe_error(exc))
                missed = True
                self._stop.wait(1.0)

    def _listen(self, conn: Any) -> bool:
        while not self._stop.is_set():
            got = any(True for _ in conn.notifies(timeout=0.5, stop_after=1))
            if got:
                # A burst (an enrolment inserts a person and several photos) is one change: drain it.
                # (Not from inside the first generator: it holds the connection's lock.)
                for _ in conn.notifies(timeout=0.05):
                    pass
                self._notify()
        return False

    def _notify(self) -> None:
        try:
            self._on_change()
        except Exception:  # noqa: BLE001 - a failed reload must not end the listening
            log.exception("store: reloading the gallery after a change failed")

    def close(self) -> None:
        """Stop listening (waits up to a second for the thread)."""
        self._stop.set()
        self._thread.join(timeout=2.0)
