"""Moving between the modes: a folder gallery and an SQLite history to a server, and back.

Push copies a folder gallery and an SQLite history to a server; pull writes a server's gallery into a
folder. Both can be run again: what is already there is skipped, never doubled.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core._atomic import atomic_write_bytes
from core._image import IMAGE_SUFFIXES, read_bytes
from core.errors import ImageReadError, InvalidPersonName
from core.gallery import _LARGEST_MARK, _key, _sha256, validate_person_name
from core.store import postgres as pg
from core.store.base import StoreError

__all__ = ["TransferReport", "pull_gallery", "push_gallery", "push_history"]

log = logging.getLogger(__name__)

# Event ids of pushed history rows are derived from the row, so that pushing twice adds nothing.
_PUSH_NAMESPACE = uuid.UUID("6f2b7c1e-3d1a-4b8e-9a55-0c7d2f6e9b10")


@dataclass
class TransferReport:
    """What a push or a pull did.

    Attributes:
        people: people created at the destination.
        photos: photos copied.
        skipped: photos already there (same content for the same person).
        events: events copied (push only).
        problems: one sentence per file or person not copied.
    """

    people: int = 0
    photos: int = 0
    skipped: int = 0
    events: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The report for a person to read."""
        out = [
            f"{self.people} people created, {self.photos} photos copied, {self.skipped} already there"
            + (f", {self.events} events copied" if self.events else "")
        ]
        out += [f"  {p}" for p in self.problems]
        return out


def _write_errors(what: str, exc: BaseException) -> StoreError:
    import psycopg

    if isinstance(exc, psycopg.errors.InsufficientPrivilege):
        return StoreError(f"this database user may not {what}: it needs the ghostface_admin role")
    return StoreError(f"cannot {what}: {pg.describe_error(exc)}")


def push_gallery(conn: Any, root: Path, *, station: str) -> TransferReport:
    """Copy every person and photo of the folder gallery ``root`` to the server (one transaction).

    Raises:
        StoreError: the user may not change the gallery, or the server fails.
    """
    import psycopg

    report = TransferReport()
    folders = sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))
    try:
        with conn.transaction():
            for folder in folders:
                try:
                    name = validate_person_name(folder.name)
                except InvalidPersonName as exc:
                    report.problems.append(f"{folder.name}: not copied ({exc})")
                    continue
                person_id = _person(conn, name, station, report)
                for photo in sorted(folder.iterdir()):
                    if photo.suffix.lower() not in IMAGE_SUFFIXES or photo.name.startswith("."):
                        continue
                    _push_photo(conn, person_id, name, photo, station, report)
    except psycopg.Error as exc:
        raise _write_errors("push the gallery", exc) from None
    return report


def _person(conn: Any, name: str, station: str, report: TransferReport) -> int:
    row = conn.execute(
        "SELECT id FROM people WHERE name_key = %s AND deleted_at IS NULL", (_key(name),)
    ).fetchone()
    if row is not None:
        return int(row[0])
    report.people += 1
    return int(
        conn.execute(
            "INSERT INTO people(name, name_key, changed_by) VALUES (%s, %s, %s) RETURNING id",
            (name, _key(name), station),
        ).fetchone()[0]
    )


def _push_photo(
    conn: Any, person_id: int, name: str, photo: Path, station: str, report: TransferReport
) -> None:
    try:
        data = read_bytes(photo)
    except ImageReadError as exc:
        report.problems.append(f"{name}/{photo.name}: not copied ({exc})")
        return
    row = conn.execute(
        "INSERT INTO photos(person_id, file_name, sha256, data, face_index, added_by)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (person_id, sha256) DO NOTHING RETURNING id",
        (
            person_id,
            photo.name,
            _sha256(data),
            data,
            0 if photo.stem.endswith(_LARGEST_MARK) else None,
            station,
        ),
    ).fetchone()
    if row is None:
        report.skipped += 1
    else:
        report.photos += 1


def push_history(conn: Any, history_path: Path, *, station: str) -> TransferReport:
    """Copy the events of an SQLite history file to the server as ``station``'s; pushing twice adds nothing.

    Raises:
        StoreError: the file is not a history, or the server fails.
    """
    import psycopg

    report = TransferReport()
    try:
        src = sqlite3.connect(f"file:{history_path}?mode=ro", uri=True)
        rows = src.execute(
            "SELECT id, time, kind, person, similarity, source, track_id, frame_index, stream_time, box,"
            " api_version, thumbnail FROM events ORDER BY id"
        ).fetchall()
        src.close()
    except sqlite3.Error as exc:
        raise StoreError(f"cannot read the history {history_path}: {exc}") from None
    params = [(str(uuid.uuid5(_PUSH_NAMESPACE, f"{station}|{r[0]}|{r[1]!r}")), station, *r[1:]) for r in rows]
    try:
        with conn.transaction(), conn.cursor() as cur:
            for p in params:
                cur.execute(
                    "INSERT INTO events (event_id, station, time, kind, person, similarity, source, track_id,"
                    " frame_index, stream_time, box, api_version, thumbnail)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    p,
                )
                report.events += cur.rowcount
    except psycopg.Error as exc:
        raise _write_errors("push the history", exc) from None
    report.skipped = len(rows) - report.events
    return report


def pull_gallery(conn: Any, root: Path) -> TransferReport:
    """Write the server's gallery into the folder ``root``: a folder per person, a file per photo.

    Photos whose content the person's folder holds already are skipped; nothing in the folder is
    removed or overwritten.
    """
    report = TransferReport()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = conn.execute(
        "SELECT p.name, ph.file_name, ph.data FROM people p JOIN photos ph ON ph.person_id = p.id"
        " WHERE p.deleted_at IS NULL ORDER BY p.name_key, ph.id"
    ).fetchall()
    conn.rollback()
    known: dict[str, set[str]] = {}
    for name, file_name, data in rows:
        folder = root / name
        if name not in known:
            if not folder.exists():
                report.people += 1
            folder.mkdir(exist_ok=True)
            known[name] = {
                _sha256(p.read_bytes())
                for p in folder.iterdir()
                if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            }
        data = bytes(data)
        sha = _sha256(data)
        if sha in known[name]:
            report.skipped += 1
            continue
        target = _free_name(folder, Path(file_name).name or "photo.jpg")
        try:
            atomic_write_bytes(target, data)
        except OSError as exc:
            report.problems.append(f"{name}/{target.name}: not written ({exc.strerror or exc})")
            continue
        known[name].add(sha)
        report.photos += 1
    return report


def _free_name(folder: Path, name: str) -> Path:
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    n = 2
    while candidate.exists():
        candidate = folder / f"{stem}-{n}{suffix}"
        n += 1
    return candidate
