"""SQLite failures told apart, and database files created private to the user.

Only a damaged file (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) may be moved aside and rebuilt. A full disk,
a lock held by another program or a read-only file are states of the machine, not of the data: the
database in them is healthy and must be left where it is.
"""

from __future__ import annotations

import contextlib
import enum
import os
import sqlite3
from pathlib import Path

from core._perms import private_file

__all__ = ["SqliteProblem", "classify", "describe", "prepare_private_db", "rollback_quietly"]

# Primary result codes (https://sqlite.org/rescode.html); extended codes carry them in the low byte.
_PERM = 3
_BUSY = 5
_LOCKED = 6
_NOMEM = 7
_READONLY = 8
_IOERR = 10
_CORRUPT = 11
_FULL = 13
_CANTOPEN = 14
_NOTADB = 26


class SqliteProblem(enum.StrEnum):
    """What kind of failure an :class:`sqlite3.Error` is."""

    CORRUPT = "corrupt"  # the file is damaged or not a database: the only case that is moved aside
    FULL = "full"  # the disk (or a size limit) is full
    LOCKED = "locked"  # another connection holds a lock for longer than the busy timeout
    READ_ONLY = "read-only"  # the file, its folder or the file system cannot be written
    CANT_OPEN = "cannot open"  # the file or its folder cannot be opened (permissions, missing folder)
    IO = "I/O error"  # the operating system failed a read or a write
    OTHER = "other"


_BY_CODE = {
    _CORRUPT: SqliteProblem.CORRUPT,
    _NOTADB: SqliteProblem.CORRUPT,
    _FULL: SqliteProblem.FULL,
    _BUSY: SqliteProblem.LOCKED,
    _LOCKED: SqliteProblem.LOCKED,
    _READONLY: SqliteProblem.READ_ONLY,
    _PERM: SqliteProblem.READ_ONLY,
    _CANTOPEN: SqliteProblem.CANT_OPEN,
    _IOERR: SqliteProblem.IO,
    _NOMEM: SqliteProblem.OTHER,
}

# Used when an error carries no code (raised by our own checks, or by an older Python).
_BY_TEXT = (
    ("malformed", SqliteProblem.CORRUPT),
    ("not a database", SqliteProblem.CORRUPT),
    ("integrity check failed", SqliteProblem.CORRUPT),
    ("disk is full", SqliteProblem.FULL),
    ("locked", SqliteProblem.LOCKED),
    ("readonly", SqliteProblem.READ_ONLY),
    ("read-only", SqliteProblem.READ_ONLY),
    ("unable to open", SqliteProblem.CANT_OPEN),
    ("disk i/o error", SqliteProblem.IO),
)

_ADVICE = {
    SqliteProblem.FULL: "free some space on the disk",
    SqliteProblem.LOCKED: "another program holds it locked: close that program (or the other GhostFace)",
    SqliteProblem.READ_ONLY: "give yourself write permission on the file and its folder",
    SqliteProblem.CANT_OPEN: "check that its folder exists and that you may write to it",
    SqliteProblem.IO: "the disk reported an error: check the disk",
    SqliteProblem.CORRUPT: "the file is damaged",
}


def classify(exc: BaseException) -> SqliteProblem:
    """The kind of an SQLite failure, from its result code (Python 3.11+) or else its message."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        found = _BY_CODE.get(code & 0xFF)
        if found is not None:
            return found
    text = str(exc).lower()
    for needle, problem in _BY_TEXT:
        if needle in text:
            return problem
    return SqliteProblem.OTHER


def describe(exc: BaseException) -> str:
    """The error and what to do about it, in one line."""
    advice = _ADVICE.get(classify(exc))
    return f"{exc} ({advice})" if advice else str(exc)


def rollback_quietly(conn: sqlite3.Connection) -> None:
    """Roll back if (and only if) a transaction is open, so the error that caused it is the one seen.

    SQLite rolls a transaction back by itself on some errors (a full disk among them); a ROLLBACK then
    fails with "no transaction is active" and, raised from an ``except`` block, hides the real cause.
    """
    if conn.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            conn.execute("ROLLBACK")


def prepare_private_db(path: Path) -> None:
    """Create ``path`` empty with mode 0600 if missing, and tighten it and its -wal/-shm to 0600.

    SQLite creates a database's -wal and -shm files with the mode of the database file, so a database
    made 0600 before SQLite first opens it never has world-readable companions.
    """
    if str(path) == ":memory:":
        return
    if not path.exists():
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for suffix in ("", "-wal", "-shm", "-journal"):
        private_file(Path(str(path) + suffix))
