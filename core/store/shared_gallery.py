"""The gallery on a PostgreSQL server: one list of people for every station of a site.

Photos (their bytes, SHA-256 and, for a group photo, the chosen face) and people live on the server;
each station keeps its matching matrix in memory, as with a folder gallery, and reloads it within a
second or two of any change (LISTEN/NOTIFY, see :class:`core.store.postgres.GalleryListener`).
Embeddings are stored per photo content, model and preprocessing, so a photo is embedded once for the
whole site: the first station that needs it for its model takes a transaction-level advisory lock on
(photo, model, preprocessing), embeds, stores and commits; another station skips a locked photo
(``pg_try_advisory_xact_lock``, the lock-and-skip of ``SKIP LOCKED`` without needing the right to
update the photo) and picks the stored embedding up once the first commits. A station that dies
mid-embedding releases its lock with its connection.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core._image import IMAGE_SUFFIXES, decode_image, read_bytes
from core.detection import Detector
from core.embedding import Embedder
from core.errors import GalleryError, ImageReadError, ImageRefusedError
from core.gallery import (
    _LARGEST_MARK,
    _STATUS_TEXT,
    EnrollReport,
    GalleryModels,
    GallerySnapshot,
    PersonInfo,
    PhotoResult,
    PhotoStatus,
    ProgressCallback,
    SyncReport,
    _key,
    _sha256,
    embed_largest_face,
    validate_person_name,
)
from core.store import postgres as pg
from core.store.base import StoreError

__all__ = ["SharedGallery"]

log = logging.getLogger(__name__)

# How long a station waits for photos another station is embedding before it gives up on them.
_WAIT_FOR_OTHERS_S = 300.0


class SharedGallery(GalleryModels):
    """People, photos and embeddings on the server; the matching matrix in memory.

    Thread safety as :class:`core.gallery.Gallery`: one writer (the thread that owns the models), any
    number of readers of :meth:`snapshot`. The listener thread only reloads stored embeddings; it never
    calls the models.

    Args:
        conninfo: the server (libpq connection string or URL).
        embedder: the face embedder.
        detector: the face detector used on enrolment photos.
        station: this station's name (recorded with what it changes).
        allow_largest: enrol the largest face of a group photo instead of refusing it.
        listen: follow other stations' changes live (LISTEN/NOTIFY).

    Raises:
        StoreError: the server is unreachable, refuses the log-in, or its schema does not fit.
    """

    def __init__(
        self,
        conninfo: str,
        embedder: Embedder,
        detector: Detector,
        *,
        station: str,
        allow_largest: bool = False,
        listen: bool = True,
    ) -> None:
        self.conninfo = conninfo
        self.where = pg.redact(conninfo)
        self.station = station
        self.allow_largest = allow_largest
        self.cache_problem: str | None = None
        self.cache_recovered_from: Path | None = None
        self.root = Path(self.where)
        self._embedder = embedder
        self._detector = detector
        self._lock = threading.RLock()
        self._snapshot = GallerySnapshot(np.zeros((0, embedder.dim), np.float32), (), "", 0)
        self.reloads = 0
        self.last_reload = 0.0
        # Called (on the listener's thread) after another station's change was loaded: the GUI's list.
        self.on_change: list[Callable[[], object]] = []
        with pg.connect(conninfo) as conn:
            pg.check_schema(conn, self.where)
        self._pool = pg.open_pool(conninfo, station=station)
        self._listener = (
            pg.GalleryListener(conninfo, self._changed_elsewhere, station=station) if listen else None
        )
        if self._listener is not None:
            self._listener.wait_ready(5.0)

    # ---------------------------------------------------------------------------------- plumbing

    def _connection(self) -> Any:
        from psycopg_pool import PoolTimeout

        try:
            return self._pool.connection(timeout=pg.CONNECT_TIMEOUT_S + 2)
        except PoolTimeout:
            raise StoreError(f"the shared store {self.where} cannot be reached now") from None

    def _write(self, what: str, work: Any) -> Any:
        """Run ``work(conn)`` in one transaction; rights and connection problems become clear errors."""
        import psycopg

        try:
            with self._connection() as conn, conn.transaction():
                return work(conn)
        except psycopg.errors.InsufficientPrivilege:
            raise StoreError(
                f"this station's database user may not {what}: changing the shared gallery needs the "
                "ghostface_admin role"
            ) from None
        except psycopg.OperationalError as exc:
            raise StoreError(f"cannot {what} on {self.where}: {pg.describe_error(exc)}") from None

    def close(self) -> None:
        """Stop listening and close the connections (a few seconds at most, whatever the server does)."""
        if self._listener is not None:
            self._listener.close()
        self._pool.close(timeout=1.0)

    def __enter__(self) -> SharedGallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prep_key(self) -> str:
        # The same key as the folder gallery's cache: what besides the model changes an embedding.
        return f"p{self._embedder.preprocessing_version}/{self._detector.model_id}/flip"

    # ----------------------------------------------------------------------------------- reading

    def _publish(self, matrix: np.ndarray, labels: tuple[str, ...], counts: dict[str, int]) -> None:
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        matrix.setflags(write=False)
        self._snapshot = GallerySnapshot(
            matrix, labels, self._embedder.model_id, self._snapshot.version + 1, counts
        )

    def people(self) -> list[PersonInfo]:
        """Everyone in the shared gallery, sorted by name (``path`` is the photo file name, not a file)."""
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT p.name, array_remove(array_agg(ph.file_name ORDER BY ph.id), NULL)"
                " FROM people p LEFT JOIN photos ph ON ph.person_id = p.id"
                " WHERE p.deleted_at IS NULL GROUP BY p.id ORDER BY p.name_key"
            ).fetchall()
        counts = self._snapshot.embedded_per_person
        out = []
        for name, files in rows:
            photos = tuple(Path(name) / f for f in files)
            out.append(
                PersonInfo(name, Path(name), photos, photos[0] if photos else None, counts.get(name, 0))
            )
        return out

    def reload(self) -> int:
        """Load the stored embeddings for the current model into memory; no model is called.

        Called by the listener on every change another station makes. Returns the usable photos.
        """
        model_id, prep = self._embedder.model_id, self._prep_key()
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT p.name, ph.face_index, e.faces, e.vector FROM people p"
                " JOIN photos ph ON ph.person_id = p.id"
                " JOIN embeddings e ON e.sha256 = ph.sha256 AND e.model_id = %s AND e.prep = %s"
                " WHERE p.deleted_at IS NULL ORDER BY p.name_key, ph.id",
                (model_id, prep),
            ).fetchall()
            names = [r[0] for r in conn.execute("SELECT name FROM people WHERE deleted_at IS NULL")]
        vectors: list[np.ndarray] = []
        labels: list[str] = []
        counts = dict.fromkeys(names, 0)
        for name, face_index, faces, blob in rows:
            if faces <= 0 or blob is None or (faces > 1 and face_index is None and not self.allow_largest):
                continue
            vector = np.frombuffer(bytes(blob), np.float32)
            if vector.shape[0] != self._embedder.dim or not np.isfinite(vector).all():
                continue
            vectors.append(vector)
            labels.append(name)
            counts[name] = counts.get(name, 0) + 1
        matrix = np.stack(vectors) if vectors else np.zeros((0, self._embedder.dim), np.float32)
        self._publish(matrix, tuple(labels), counts)
        self.reloads += 1
        self.last_reload = time.time()
        log.info(
            "store: gallery loaded from %s: %d people, %d usable photos", self.where, len(names), len(labels)
        )
        return len(labels)

    def _changed_elsewhere(self) -> None:
        self.reload()
        for callback in list(self.on_change):
            callback()

    # -------------------------------------------------------------------------------------- sync

    def sync(
        self, progress: ProgressCallback | None = None, cancel: threading.Event | None = None
    ) -> SyncReport:
        """Embed the photos the site has no embedding of for this model yet, then load the gallery.

        Raises:
            StoreError: the server cannot be reached.
        """
        with self._lock:
            embedded, cancelled = self._embed_missing(progress, cancel)
            if cancelled:
                snap = self._snapshot
                return SyncReport(0, 0, len(snap.labels), embedded, 0, (), True, snap.model_id)
            usable = self.reload()
            problems = self._problems()
        people = len(self._snapshot.embedded_per_person)
        photos = usable + len(problems)
        return SyncReport(
            people,
            photos,
            usable,
            embedded,
            max(0, usable - embedded),
            tuple(problems),
            False,
            self._embedder.model_id,
        )

    def _missing(self, conn: Any) -> list[str]:
        rows = conn.execute(
            "SELECT DISTINCT ph.sha256 FROM photos ph JOIN people p ON p.id = ph.person_id"
            " WHERE p.deleted_at IS NULL AND NOT EXISTS (SELECT 1 FROM embeddings e"
            " WHERE e.sha256 = ph.sha256 AND e.model_id = %s AND e.prep = %s)",
            (self._embedder.model_id, self._prep_key()),
        ).fetchall()
        conn.rollback()
        return [r[0] for r in rows]

    def _embed_missing(
        self, progress: ProgressCallback | None, cancel: threading.Event | None
    ) -> tuple[int, bool]:
        """Embed what no station has embedded for this model; wait for what others are embedding."""
        embedded = 0
        deadline = time.monotonic() + _WAIT_FOR_OTHERS_S
        with self._connection() as conn:
            missing = self._missing(conn)
            total = len(missing)
            done = 0
            while missing:
                busy = []
                for sha in missing:
                    if cancel is not None and cancel.is_set():
                        return embedded, True
                    outcome = self._embed_one(conn, sha)
                    if outcome == "busy":
                        busy.append(sha)
                        continue
                    embedded += outcome == "embedded"
                    done += 1
                    if progress is not None:
                        progress(done, total, sha[:12])
                if not busy or time.monotonic() > deadline:
                    break
                # Another station is embedding these: its commit makes them ours too.
                time.sleep(0.2)
                missing = [sha for sha in self._missing(conn) if sha in set(busy)]
        return embedded, False

    def _embed_one(self, conn: Any, sha: str) -> str:
        """What happened: "embedded", "present" (someone else did it) or "busy" (another station has it)."""
        model_id, prep = self._embedder.model_id, self._prep_key()
        with conn.transaction():
            locked = conn.execute(
                "SELECT pg_try_advisory_xact_lock(hashtextextended(%s, 0))", (f"{sha}|{model_id}|{prep}",)
            ).fetchone()[0]
            if not locked:
                return "busy"
            present = conn.execute(
                "SELECT 1 FROM embeddings WHERE sha256 = %s AND model_id = %s AND prep = %s",
                (sha, model_id, prep),
            ).fetchone()
            if present:
                return "present"
            row = conn.execute("SELECT data FROM photos WHERE sha256 = %s LIMIT 1", (sha,)).fetchone()
            if row is None:
                return "present"  # deleted meanwhile
            faces, vector = self._embed_bytes(bytes(row[0]), sha)
            self._insert_embedding(conn, sha, faces, vector)
        return "embedded"

    def _embed_bytes(self, data: bytes, name: str) -> tuple[int, np.ndarray | None]:
        try:
            image = decode_image(data, name)
            vector, detections = embed_largest_face(image, self._detector, self._embedder)
        except (ImageReadError, ImageRefusedError, cv2.error) as exc:
            log.warning("store: photo %s cannot be used (%s)", name[:12], exc)
            return -1, None
        return len(detections), vector

    def _insert_embedding(self, conn: Any, sha: str, faces: int, vector: np.ndarray | None) -> None:
        blob = None if vector is None else np.asarray(vector, np.float32).tobytes()
        conn.execute(
            "INSERT INTO embeddings(sha256, model_id, prep, faces, vector, station)"
            " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            (sha, self._embedder.model_id, self._prep_key(), faces, blob, self.station),
        )

    def _problems(self) -> list[PhotoResult]:
        with self._connection() as conn:
            rows = conn.execute(
                "SELECT p.name, ph.file_name, ph.face_index, e.faces FROM people p"
                " JOIN photos ph ON ph.person_id = p.id"
                " JOIN embeddings e ON e.sha256 = ph.sha256 AND e.model_id = %s AND e.prep = %s"
                " WHERE p.deleted_at IS NULL AND (e.faces <= 0 OR (e.faces > 1 AND ph.face_index IS NULL))",
                (self._embedder.model_id, self._prep_key()),
            ).fetchall()
        out = []
        for name, file_name, face_index, faces in rows:
            status = (
                PhotoStatus.NOT_IMAGE
                if faces < 0
                else PhotoStatus.NO_FACE
                if faces == 0
                else PhotoStatus.SEVERAL_FACES
            )
            if status is PhotoStatus.SEVERAL_FACES and (face_index is not None or self.allow_largest):
                continue
            out.append(
                PhotoResult(
                    Path(name) / file_name, name, status, faces, f"{name}/{file_name}: {_STATUS_TEXT[status]}"
                )
            )
        return out

    # ----------------------------------------------------------------------------------- editing

    def _person_id(self, conn: Any, name: str) -> int | None:
        row = conn.execute(
            "SELECT id FROM people WHERE name_key = %s AND deleted_at IS NULL", (_key(name.strip()),)
        ).fetchone()
        return None if row is None else int(row[0])

    def add_person(self, name: str) -> PersonInfo:
        """Create a person with no photo yet.

        Raises:
            InvalidPersonName: the name is not a safe name.
            GalleryError: the person exists already (names are compared ignoring case).
            StoreError: this station may not change the gallery, or the server is unreachable.
        """
        import psycopg

        clean = validate_person_name(name)

        def work(conn: Any) -> None:
            conn.execute(
                "INSERT INTO people(name, name_key, changed_by) VALUES (%s, %s, %s)",
                (clean, _key(clean), self.station),
            )

        try:
            self._write("add a person", work)
        except psycopg.errors.UniqueViolation:
            raise GalleryError(f"{clean!r} is already in the gallery") from None
        return PersonInfo(clean, Path(clean), (), None, 0)

    def rename_person(self, old: str, new: str) -> PersonInfo:
        """Rename a person on the server; every station follows. Photos and embeddings carry over.

        When two stations change the same person at once, the first to commit wins; the other is told
        the person is no longer there under that name.

        Raises:
            InvalidPersonName: the new name is not a safe name.
            GalleryError: no such person (any more), or the new name is taken.
            StoreError: this station may not change the gallery, or the server is unreachable.
        """
        import psycopg

        clean = validate_person_name(new)

        def work(conn: Any) -> int:
            cur = conn.execute(
                "UPDATE people SET name = %s, name_key = %s, changed_at = now(), changed_by = %s"
                " WHERE name_key = %s AND deleted_at IS NULL",
                (clean, _key(clean), self.station, _key(old.strip())),
            )
            return int(cur.rowcount)

        try:
            changed = self._write("rename a person", work)
        except psycopg.errors.UniqueViolation:
            raise GalleryError(f"{clean!r} is already in the gallery") from None
        if not changed:
            raise GalleryError(
                f"{old!r} is no longer in the shared gallery: another station renamed or deleted them "
                "meanwhile (the list is reloaded)"
            )
        self.reload()
        return next(
            (p for p in self.people() if p.name == clean), PersonInfo(clean, Path(clean), (), None, 0)
        )

    def delete_person(self, name: str, backup_dir: Path | str | None = None) -> Path:
        """Remove a person from every station; their photos stay on the server (marked deleted).

        Returns:
            a label for where the photos are kept (``server:<name>``).

        Raises:
            GalleryError: no such person (any more).
            StoreError: this station may not change the gallery, or the server is unreachable.
        """
        del backup_dir  # nothing is moved: the photos stay in the database, restorable

        def work(conn: Any) -> int:
            cur = conn.execute(
                "UPDATE people SET deleted_at = now(), deleted_by = %s WHERE name_key = %s AND deleted_at IS NULL",
                (self.station, _key(name.strip())),
            )
            return int(cur.rowcount)

        if not self._write("delete a person", work):
            raise GalleryError(
                f"{name!r} is no longer in the shared gallery: another station renamed or deleted them meanwhile"
            )
        self.reload()
        return Path(f"server:{name}")

    # --------------------------------------------------------------------------------- enrolment

    def add_photos(
        self,
        name: str,
        paths: Iterable[Path | str],
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        allow_largest: bool | None = None,
    ) -> EnrollReport:
        """Enrol photos of a person on the server (created when new), with their embeddings.

        Raises:
            InvalidPersonName: the name is not a safe name.
            StoreError: this station may not change the gallery, or the server is unreachable.
        """
        clean = validate_person_name(name)
        allow = self.allow_largest if allow_largest is None else allow_largest
        items = [Path(p) for p in paths]
        prepared: list[tuple[PhotoResult, bytes, str, int, np.ndarray | None]] = []
        results: list[PhotoResult] = []
        cancelled = False
        with self._lock:
            for done, src in enumerate(items, start=1):
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                got = self._prepare(clean, src, allow)
                if isinstance(got, PhotoResult):
                    results.append(got)
                else:
                    prepared.append(got)
                    results.append(got[0])
                if progress is not None:
                    progress(done, len(items), src.name)
            if prepared:
                stored = self._write("enrol photos", lambda conn: self._store_photos(conn, clean, prepared))
                results = [stored.get(id(r), r) for r in results]
            self.reload()
        return EnrollReport(clean, tuple(results), cancelled)

    def _prepare(
        self, person: str, src: Path, allow: bool
    ) -> PhotoResult | tuple[PhotoResult, bytes, str, int, np.ndarray | None]:
        def result(status: PhotoStatus, faces: int = -1, detail: str = "") -> PhotoResult:
            return PhotoResult(src, person, status, faces, detail or f"{src.name}: {_STATUS_TEXT[status]}")

        if src.suffix.lower() not in IMAGE_SUFFIXES:
            return result(PhotoStatus.NOT_IMAGE)
        try:
            data = read_bytes(src)
            image = decode_image(data, src.name)
        except ImageRefusedError as exc:
            return result(PhotoStatus.REFUSED, detail=str(exc))
        except ImageReadError as exc:
            return result(PhotoStatus.UNREADABLE, detail=str(exc))
        try:
            vector, detections = embed_largest_face(image, self._detector, self._embedder)
        except cv2.error as exc:
            return result(
                PhotoStatus.NOT_IMAGE, detail=f"{src.name}: could not be processed ({exc.err or exc})"
            )
        faces = len(detections)
        if faces == 0 or vector is None:
            return result(PhotoStatus.NO_FACE, 0)
        if faces > 1 and not allow:
            return result(PhotoStatus.SEVERAL_FACES, faces)
        return result(PhotoStatus.OK, faces), data, _sha256(data), faces, vector

    def _store_photos(
        self, conn: Any, person: str, prepared: list[tuple[PhotoResult, bytes, str, int, np.ndarray | None]]
    ) -> dict[int, PhotoResult]:
        person_id = self._person_id(conn, person)
        if person_id is None:
            person_id = conn.execute(
                "INSERT INTO people(name, name_key, changed_by) VALUES (%s, %s, %s) RETURNING id",
                (person, _key(person), self.station),
            ).fetchone()[0]
        out: dict[int, PhotoResult] = {}
        for result, data, sha, faces, vector in prepared:
            stem, suffix = result.path.stem, result.path.suffix.lower()
            if faces > 1 and not stem.endswith(_LARGEST_MARK):
                stem += _LARGEST_MARK
            row = conn.execute(
                "INSERT INTO photos(person_id, file_name, sha256, data, face_index, added_by)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (person_id, sha256) DO NOTHING RETURNING id",
                (person_id, stem + suffix, sha, data, 0 if faces > 1 else None, self.station),
            ).fetchone()
            if row is None:
                out[id(result)] = PhotoResult(
                    result.path,
                    person,
                    PhotoStatus.DUPLICATE,
                    faces,
                    f"{result.path.name}: {_STATUS_TEXT[PhotoStatus.DUPLICATE]}",
                )
                continue
            self._insert_embedding(conn, sha, faces, vector)
        return out

    def add_image(self, name: str, image_bgr: np.ndarray) -> PhotoResult:
        """Enrol one camera frame (it must show exactly one face), saved as JPEG on the server.

        Raises:
            InvalidPersonName: the name is not a safe name.
            GalleryError: the frame cannot be encoded.
            StoreError: this station may not change the gallery, or the server is unreachable.
        """
        import tempfile

        ok, encoded = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise GalleryError("the camera frame could not be encoded as JPEG")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"camera-{time.strftime('%Y%m%d-%H%M%S')}.jpg"
            path.write_bytes(encoded.tobytes())
            report = self.add_photos(name, [path], allow_largest=False)
        return report.results[0]
