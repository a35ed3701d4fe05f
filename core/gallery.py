"""The gallery of known people: a folder per person on disk, embeddings cached in SQLite.

The folder is the truth (``<root>/<Person Name>/*.jpg``); users may edit it in a file manager. The cache
(an SQLite database in the user cache folder by default) maps (file content SHA-256, embedder model id,
preprocessing key) to the embedding of the photo's face, so a read-only gallery works, renaming a person
costs nothing, and changing a photo or the model re-embeds only what changed. The cache is never written
inside the gallery folder. Only a damaged cache file (``SQLITE_CORRUPT``, ``SQLITE_NOTADB``) is moved
aside and rebuilt; on a full disk, a lock held too long or a read-only file the healthy cache stays where
it is and an in-memory cache stands in for the session (:attr:`Gallery.cache_problem` says why). Every
cached vector carries a checksum; one that fails it is embedded again.

A photo showing several faces is skipped and reported, unless the user picked the person's face in it
(a ``<photo>.face.json`` sidecar, :mod:`core.face_choice`) or allows its largest face: such a photo is
copied in as ``<name>.largest.<ext>``. Either way the folder itself records the choice.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import hashlib
import logging
import os
import shutil
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from core._atomic import atomic_write_bytes
from core._image import IMAGE_SUFFIXES, decode_image, read_bytes
from core._perms import make_private_dir, private_file
from core._sqlite import SqliteProblem, classify, describe, prepare_private_db, rollback_quietly
from core.alignment import align_face
from core.detection import Detector
from core.embedding import Embedder
from core.enrollment import sharpness
from core.errors import GalleryError, ImageReadError, ImageRefusedError, InvalidPersonName
from core.face_choice import FaceChoice, is_sidecar, pick_detection, read_choice, sidecar_path, write_choice
from core.paths import cache_dir
from core.types import Detection

__all__ = [
    "EnrollReport",
    "Gallery",
    "GalleryModels",
    "GallerySnapshot",
    "PersonInfo",
    "PhotoFace",
    "PhotoResult",
    "PhotoStatus",
    "ProgressCallback",
    "SyncReport",
    "embed_largest_face",
    "validate_person_name",
]

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int, str], None]

MAX_NAME_LENGTH = 100
# Folder names are limited in bytes (255 on most file systems), and a backup of a deleted person adds a
# date to the name: 200 bytes of UTF-8 leave room for that (100 CJK characters are 300 bytes).
MAX_NAME_BYTES = 200
# Version 2 added a checksum per cached vector.
_SCHEMA_VERSION = "2"
# Files a file manager leaves in folders; never reported as "not an image".
_IGNORED_FILES = frozenset({"thumbs.db", "desktop.ini", ".ds_store"})
_WINDOWS_RESERVED = frozenset(
    {"con", "prn", "aux", "nul"} | {f"com{i}" for i in range(1, 10)} | {f"lpt{i}" for i in range(1, 10)}
)
_WINDOWS_FORBIDDEN = set('<>:"|?*')
# The zero-width non-joiner and joiner are spelling, not decoration, in these scripts (Persian
# "فاطمه‌زهرا", Devanagari conjuncts): allowed there between two letters, refused anywhere else.
_JOINERS = frozenset("\u200c\u200d")
_JOINING_SCRIPTS = (
    "ARABIC", "SYRIAC", "NKO", "DEVANAGARI", "BENGALI", "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL",
    "TELUGU", "KANNADA", "MALAYALAM", "SINHALA", "MONGOLIAN",
)  # fmt: skip
# A photo whose name ends so (``group.largest.jpg``) enrols its largest face even when it shows several.
_LARGEST_MARK = ".largest"
# A face taken from the video (an event's thumbnail, a live sighting) must be at least this large and
# sharp to become a gallery photo. Sharpness is the Laplacian variance of the middle of the aligned
# 112x112 face (eyes to mouth: the black border a tight thumbnail leaves around it would count as edges).
# Measured on event thumbnails: the demo clip's close-ups 56-308, its dark or smeared faces 2-41; a sharp
# portrait 116, the same under a 5x5 box blur 49, 9x9 21.
ASSIGN_MIN_FACE_PX = 40
ASSIGN_MIN_SHARPNESS = 25.0
# The middle of an aligned 112x112 face (rows, columns), inside the face for any pose the detector finds.
_FACE_MIDDLE = (slice(24, 96), slice(24, 88))
# Commit the cache every this many embedded photos: a crash loses at most this much work.
_COMMIT_EVERY = 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS embeddings (
    sha256 TEXT NOT NULL,
    model_id TEXT NOT NULL,
    prep TEXT NOT NULL,
    faces INTEGER NOT NULL,
    vector BLOB,
    checksum TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    PRIMARY KEY (sha256, model_id, prep)
);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
"""


class PhotoStatus(enum.StrEnum):
    """What happened to one photo."""

    OK = "ok"
    NO_FACE = "no_face"
    SEVERAL_FACES = "several_faces"
    UNREADABLE = "unreadable"
    NOT_IMAGE = "not_image"
    DUPLICATE = "duplicate"
    REFUSED = "refused"  # not a regular file, or too large to be a photo
    NOT_SAVED = "not_saved"  # a good photo that could not be copied into the gallery (disk full, ...)
    CHOICE_LOST = "choice_lost"  # the face the user picked in a group photo is no longer found in it
    LOW_QUALITY = "low_quality"  # a face too small or too blurred to be worth keeping


_STATUS_TEXT = {
    PhotoStatus.OK: "enrolled",
    PhotoStatus.NO_FACE: "no face found",
    PhotoStatus.SEVERAL_FACES: "several faces: pick the person's face in it, or use a photo with one face",
    PhotoStatus.UNREADABLE: "the file cannot be read",
    PhotoStatus.NOT_IMAGE: "not an image (JPEG, PNG, BMP or WebP)",
    PhotoStatus.DUPLICATE: "the same photo is already enrolled for this person",
    PhotoStatus.REFUSED: "not used: not a regular photo file",
    PhotoStatus.NOT_SAVED: "could not be saved into the gallery",
    PhotoStatus.CHOICE_LOST: "the face picked in this photo is no longer found: pick it again",
    PhotoStatus.LOW_QUALITY: "the face is too small or too blurred",
}


@dataclass(frozen=True, slots=True)
class PhotoResult:
    """The outcome for one photo.

    Attributes:
        path: the photo (inside the gallery for a synced or copied photo, else the file given).
        person: whose photo it is.
        status: ok, or why the photo is not used.
        faces: faces found (-1 when the photo could not be read).
        message: a sentence for the user.
    """

    path: Path
    person: str
    status: PhotoStatus
    faces: int = -1
    message: str = ""

    @property
    def ok(self) -> bool:
        """Whether the photo is used."""
        return self.status is PhotoStatus.OK


@dataclass(frozen=True, slots=True)
class PersonInfo:
    """One person of the gallery as the folder shows them.

    Attributes:
        name: the folder name.
        path: the person's folder.
        photos: the image files in it, sorted.
        thumbnail: the photo to show for the person (the first), or None.
        embedded: photos with a usable embedding at the last sync (0 before any sync).
        face_photo: the first photo whose face is in use (rejected photos never are), or None.
        face_jpeg: a small JPEG of that face, when the one who listed the people made it, else empty.
    """

    name: str
    path: Path
    photos: tuple[Path, ...]
    thumbnail: Path | None
    embedded: int = 0
    face_photo: Path | None = None
    face_jpeg: bytes = b""


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What :meth:`Gallery.sync` did.

    Attributes:
        people: people in the gallery.
        photos: photo files looked at.
        usable: photos with a usable embedding.
        embedded: photos embedded now (not found in the cache).
        cached: photos whose embedding came from the cache.
        problems: one entry per photo that is not used, with the reason.
        cancelled: the sync stopped early; the previous embeddings are still in use.
        model_id: the embedder the embeddings belong to.
    """

    people: int
    photos: int
    usable: int
    embedded: int
    cached: int
    problems: tuple[PhotoResult, ...] = ()
    cancelled: bool = False
    model_id: str = ""


@dataclass(frozen=True, slots=True)
class EnrollReport:
    """What :meth:`Gallery.add_photos` did, photo by photo (in the order given)."""

    person: str
    results: tuple[PhotoResult, ...] = ()
    cancelled: bool = False

    @property
    def added(self) -> int:
        """How many photos were added."""
        return sum(1 for r in self.results if r.ok)

    @property
    def problems(self) -> tuple[PhotoResult, ...]:
        """The photos that were not used, each with the reason."""
        return tuple(r for r in self.results if not r.ok)


@dataclass(frozen=True, slots=True)
class GallerySnapshot:
    """The embeddings in use, replaced whole after every change (safe to read from any thread).

    Attributes:
        matrix: ``(M, d) float32`` L2-normalised photo embeddings.
        labels: ``M`` person names.
        model_id: the embedder that made them ("" when empty).
        version: increases with every new snapshot.
        embedded_per_person: usable photos per person.
        paths: ``M`` photo files, row by row (empty when not known).
    """

    matrix: np.ndarray
    labels: tuple[str, ...]
    model_id: str = ""
    version: int = 0
    embedded_per_person: dict[str, int] = field(default_factory=dict)
    paths: tuple[Path, ...] = ()


@dataclass(frozen=True, slots=True)
class PhotoFace:
    """One gallery photo as the gallery sees it: the face it uses, and that face's embedding.

    Attributes:
        path: the photo.
        status: ok, or why the photo is not used.
        faces: faces found (-1 when the photo could not be read).
        detection: the face in use (or, for a photo not used, the largest face found), or None.
        vector: ``(d,) float32`` embedding of the face in use, or None.
        image: ``(H, W, 3) uint8`` BGR photo, or None when it could not be read.
        message: a sentence for the user.
    """

    path: Path
    status: PhotoStatus
    faces: int
    detection: Detection | None
    vector: np.ndarray | None
    image: np.ndarray | None
    message: str = ""


def validate_person_name(name: str) -> str:
    """Return ``name`` (surrounding spaces removed, Unicode NFC) if it is a safe folder name.

    Raises:
        InvalidPersonName: the name is empty, ``.``/``..``, starts with a dot, holds a path separator,
            a control character or a character Windows forbids, ends with a dot or space, is a reserved
            Windows device name, holds an invisible formatting character (bidi controls, zero-width
            characters; a zero-width non-joiner or joiner is allowed between two letters of a script
            that spells with it, like Persian or Devanagari), or is longer than 100 characters or 200
            bytes of UTF-8.
    """
    if not isinstance(name, str):
        raise InvalidPersonName(f"a person name must be text, got {type(name).__name__}")
    clean = unicodedata.normalize("NFC", name.strip())
    shown = repr(name)
    if not clean:
        raise InvalidPersonName("a person name cannot be empty")
    if "/" in clean or "\\" in clean:
        raise InvalidPersonName(
            f"person name {shown} cannot contain '/' or '\\' (it must be one folder name)"
        )
    if clean in {".", ".."} or clean.startswith("."):
        raise InvalidPersonName(f"person name {shown} cannot start with a dot")
    if any(unicodedata.category(c) == "Cc" for c in clean):
        raise InvalidPersonName(f"person name {shown} contains a control character")
    hidden = _hidden_characters(clean)
    if hidden:
        # Bidi overrides and zero-width characters make two different folders look like one name
        # (or a name read backwards); a name must look like what it is.
        codes = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'format character')}" for c in hidden)
        why = (
            " (a zero-width joiner or non-joiner is allowed only between two letters of a script that "
            "uses it, such as Persian or Devanagari)"
            if _JOINERS & set(hidden)
            else ""
        )
        raise InvalidPersonName(f"person name {shown} contains invisible formatting characters ({codes}){why}")
    bad = sorted(set(clean) & _WINDOWS_FORBIDDEN)
    if bad:
        raise InvalidPersonName(
            f"person name {shown} contains {' '.join(bad)}, which folder names cannot hold"
        )
    if clean.endswith("."):
        raise InvalidPersonName(f"person name {shown} cannot end with a dot")
    if clean.split(".")[0].strip().lower() in _WINDOWS_RESERVED:
        raise InvalidPersonName(f"person name {shown} is a reserved device name on Windows")
    if len(clean) > MAX_NAME_LENGTH:
        raise InvalidPersonName(
            f"person name is {len(clean)} characters long; at most {MAX_NAME_LENGTH} are allowed"
        )
    size = len(clean.encode("utf-8"))
    if size > MAX_NAME_BYTES:
        raise InvalidPersonName(
            f"person name is {size} bytes long in UTF-8 ({len(clean)} characters); folder names allow "
            f"at most {MAX_NAME_BYTES} bytes: use a shorter name"
        )
    return clean


def _joining_letter(c: str) -> bool:
    """A letter or mark of a script in which ZWNJ/ZWJ change how the letters join."""
    return (
        not c.isascii()
        and unicodedata.category(c)[0] in "LM"
        and unicodedata.name(c, "").startswith(_JOINING_SCRIPTS)
    )


def _hidden_characters(name: str) -> list[str]:
    """The invisible formatting characters of ``name`` that a name may not hold, sorted, once each."""
    hidden: set[str] = set()
    for i, c in enumerate(name):
        if unicodedata.category(c) != "Cf":
            continue
        # Between two letters of such a script; so not first or last, not doubled, not next to a space.
        allowed = (
            c in _JOINERS and 0 < i < len(name) - 1 and _joining_letter(name[i - 1]) and _joining_letter(name[i + 1])
        )
        if not allowed:
            hidden.add(c)
    return sorted(hidden)


def _face_area(det: Detection) -> float:
    return max(det.width, 0.0) * max(det.height, 0.0)


def embed_largest_face(
    image_bgr: np.ndarray, detector: Detector, embedder: Embedder, *, flip: bool = True
) -> tuple[np.ndarray | None, list[Detection]]:
    """Detect the faces of a photo and embed the largest.

    Returns:
        ``((d,) float32 embedding or None when there is no face, the detections largest first)``.
    """
    detections = sorted(detector.detect(image_bgr), key=_face_area, reverse=True)
    if not detections:
        return None, []
    crop = align_face(image_bgr, detections[0].landmarks)
    return embedder.embed(crop[None], flip=flip)[0], detections


def _central_face(image_bgr: np.ndarray, detections: list[Detection]) -> Detection:
    """The face nearest the middle of a crop (the one it was cut around)."""
    h, w = image_bgr.shape[:2]

    def distance(det: Detection) -> float:
        cx, cy = (det.box[0] + det.box[2]) / 2, (det.box[1] + det.box[3]) / 2
        return float((cx - w / 2) ** 2 + (cy - h / 2) ** 2)

    return min(detections, key=distance)


def _face_quality_problem(
    image_bgr: np.ndarray, detections: list[Detection], min_face_px: int, min_sharpness: float
) -> tuple[PhotoStatus, int, str] | None:
    """(status, faces, message) when the face of a crop is not worth keeping, else None."""
    if not detections:
        return PhotoStatus.NO_FACE, 0, "No face was found in this picture: choose another sighting."
    face = _central_face(image_bgr, detections)
    face_px = min(face.width, face.height)
    if face_px < min_face_px:
        return (
            PhotoStatus.LOW_QUALITY,
            len(detections),
            f"The face is too small ({face_px:.0f} px, at least {min_face_px} px are needed): choose a "
            "sighting where the face is larger.",
        )
    sharp = sharpness(align_face(image_bgr, face.landmarks)[_FACE_MIDDLE])
    if sharp < min_sharpness:
        return (
            PhotoStatus.LOW_QUALITY,
            len(detections),
            f"The face is too blurred (sharpness {sharp:.0f}, at least {min_sharpness:.0f} is needed): "
            "choose a sharper sighting.",
        )
    return None


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _vector_checksum(sha: str, model_id: str, prep: str, faces: int, blob: bytes | None) -> str:
    """What a cache row must hash to: a flipped bit or an edited vector is embedded again."""
    digest = hashlib.sha256(f"{sha}|{model_id}|{prep}|{faces}|".encode())
    digest.update(blob or b"")
    return digest.hexdigest()[:32]


def _key(name: str) -> str:
    """Names compared the way case-insensitive file systems (Windows, macOS) compare them."""
    return unicodedata.normalize("NFC", name).casefold()


class GalleryModels:
    """The models and the published snapshot, as both galleries (folder and shared store) hold them.

    A mixin: the class sets ``_embedder``, ``_detector``, ``_lock`` and ``_snapshot`` and defines
    ``_publish``.
    """

    _embedder: Embedder
    _detector: Detector
    _lock: threading.RLock
    _snapshot: GallerySnapshot

    def _publish(self, matrix: np.ndarray, labels: tuple[str, ...], counts: dict[str, int]) -> None:
        raise NotImplementedError

    @property
    def embedder(self) -> Embedder:
        """The embedder that turns the gallery's faces into embeddings."""
        return self._embedder

    @property
    def detector(self) -> Detector:
        """The detector that finds the faces in the gallery's photos."""
        return self._detector

    def set_embedder(self, embedder: Embedder) -> None:
        """Use another embedder. The embeddings in use are dropped until the next :meth:`sync`."""
        with self._lock:
            self._embedder = embedder
            self._publish(np.zeros((0, embedder.dim), np.float32), (), {})

    def set_detector(self, detector: Detector) -> None:
        """Use another detector for enrolment photos (takes effect at the next :meth:`sync`)."""
        with self._lock:
            self._detector = detector

    @property
    def needs_sync(self) -> bool:
        """True when the embeddings in use are not from the current embedder."""
        return self._snapshot.model_id != self._embedder.model_id

    def snapshot(self) -> GallerySnapshot:
        """The embeddings in use (immutable)."""
        return self._snapshot

    def embeddings(self) -> tuple[np.ndarray, list[str]]:
        """``((M, d) float32 photo embeddings, M person names)`` from the last sync."""
        snap = self._snapshot
        return snap.matrix, list(snap.labels)


class Gallery(GalleryModels):
    """People, their photos, and the embeddings the matcher uses.

    Thread safety: one writer (a worker running :meth:`sync`, :meth:`add_photos`, ...) and any number
    of readers (:meth:`people`, :meth:`embeddings`, :meth:`snapshot`); writers are serialised by a lock.
    The detector and embedder are called only from the writer's thread: do not let another thread use
    the same model objects at the same time.

    Args:
        root: the gallery folder (created if missing).
        embedder: the face embedder.
        detector: the face detector used on enrolment photos.
        cache_path: the SQLite cache file; None means ``cache_dir()/"gallery.sqlite3"``.
        allow_largest: enrol the largest face of a photo with several faces instead of skipping it.
        cache_busy_timeout_s: how long to wait for a cache another program holds locked before
            using an in-memory cache instead.

    Attributes:
        cache_problem: why the cache on disk is not in use (full disk, lock, read-only), else None.
        cache_recovered_from: where a corrupt cache was moved, else None.
    """

    def __init__(
        self,
        root: Path | str,
        embedder: Embedder,
        detector: Detector,
        cache_path: Path | str | None = None,
        *,
        allow_largest: bool = False,
        cache_busy_timeout_s: float = 30.0,
    ) -> None:
        self.root = Path(root).expanduser().resolve()
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GalleryError(
                f"cannot use {self.root} as the gallery folder: {exc.strerror or exc}"
            ) from exc
        if not self.root.is_dir():
            raise GalleryError(f"the gallery path {self.root} is not a folder")
        self._embedder = embedder
        self._detector = detector
        self.allow_largest = allow_largest
        self.cache_path = Path(cache_path) if cache_path is not None else cache_dir() / "gallery.sqlite3"
        self._lock = threading.RLock()
        self._snapshot = GallerySnapshot(np.zeros((0, embedder.dim), np.float32), (), "", 0)
        self._busy_timeout_s = float(cache_busy_timeout_s)
        self.cache_problem: str | None = None
        self.cache_recovered_from: Path | None = None
        self._cache_in_memory = False
        self._conn = self._open_cache()

    # ----------------------------------------------------------------------------------------- cache

    def _open_cache(self) -> sqlite3.Connection:
        path = self.cache_path
        try:
            make_private_dir(path.parent)
            return self._connect(path, self._busy_timeout_s)
        except sqlite3.DatabaseError as exc:
            if classify(exc) is not SqliteProblem.CORRUPT:
                return self._memory_cache(exc)
            try:
                moved = self._move_aside(path)
                self.cache_recovered_from = moved
                log.warning(
                    "the embedding cache %s was corrupt (%s); moved to %s and rebuilt", path, exc, moved
                )
                return self._connect(path, self._busy_timeout_s)
            except (sqlite3.DatabaseError, OSError) as again:  # a damaged file on a read-only disk
                return self._memory_cache(again)
        except OSError as exc:
            return self._memory_cache(exc)

    def _memory_cache(self, exc: BaseException) -> sqlite3.Connection:
        """An empty in-memory cache for this session; the file on disk (healthy) is left alone."""
        if isinstance(exc, sqlite3.Error):
            reason = describe(exc)
        else:
            reason = f"{getattr(exc, 'strerror', None) or exc}: {getattr(exc, 'filename', None) or self.cache_path}"
        self.cache_problem = (
            f"the embedding cache {self.cache_path} cannot be used ({reason}); using an in-memory cache "
            "for this session, so photos are embedded again at the next start"
        )
        log.warning("%s", self.cache_problem)
        self._cache_in_memory = True
        return self._connect(Path(":memory:"), 0.0)

    def _use_memory_cache(self, exc: sqlite3.Error) -> None:
        """Leave a cache that failed in use (full disk, lock, read-only) for an in-memory one."""
        rollback_quietly(self._conn)
        with contextlib.suppress(sqlite3.Error):
            self._conn.close()
        self._conn = self._memory_cache(exc)

    def _guarded(
        self, sql: str, args: tuple[object, ...] = (), *, again: bool = True
    ) -> sqlite3.Cursor | None:
        """Run one statement; a cache that cannot be used any more is replaced by an in-memory one.

        A corrupt cache raises (the caller moves it aside); every other failure only costs the cache,
        and the statement is run again on the in-memory one when ``again`` (not for a COMMIT: what it
        would have kept is gone with the file's transaction).
        """
        try:
            return self._conn.execute(sql, args)
        except sqlite3.DatabaseError as exc:
            if classify(exc) is SqliteProblem.CORRUPT or self._cache_in_memory:
                raise
            self._use_memory_cache(exc)
            return self._conn.execute(sql, args) if again else None

    def _fetchone(self, sql: str, args: tuple[object, ...]) -> Any:
        cursor = self._guarded(sql, args)
        return cursor.fetchone() if cursor is not None else None

    def _begin(self) -> None:
        if not self._conn.in_transaction:
            self._guarded("BEGIN")

    def _commit_quietly(self) -> None:
        """Keep the work done before an error if the cache still can; never hide that error."""
        with contextlib.suppress(sqlite3.Error):
            self._commit()

    def _commit(self) -> None:
        # Only inside a transaction: SQLite ends one by itself on some errors (a full disk), and a
        # COMMIT then would fail with "no transaction is active", hiding the real cause.
        if self._conn.in_transaction:
            self._guarded("COMMIT", again=False)

    @staticmethod
    def _connect(path: Path, timeout_s: float) -> sqlite3.Connection:
        # One connection for the gallery's life, used under self._lock only (hence check_same_thread off).
        prepare_private_db(path)
        conn = sqlite3.connect(str(path), timeout=timeout_s, check_same_thread=False, isolation_level=None)
        try:
            if str(path) != ":memory:":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            check = conn.execute("PRAGMA quick_check").fetchone()
            if check is None or check[0] != "ok":
                raise sqlite3.DatabaseError(f"integrity check failed: {check[0] if check else 'no answer'}")
            conn.executescript(_SCHEMA)
            row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
            if row is None:
                conn.execute("INSERT INTO meta(key, value) VALUES ('schema', ?)", (_SCHEMA_VERSION,))
            elif row[0] != _SCHEMA_VERSION:
                # A cache from another version of the program: it is only a cache, start it again.
                conn.executescript("DROP TABLE embeddings; DELETE FROM files;")
                conn.executescript(_SCHEMA)
                conn.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (_SCHEMA_VERSION,))
        except BaseException:
            conn.close()
            raise
        prepare_private_db(path)
        return conn

    @staticmethod
    def _move_aside(path: Path) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = path.with_name(f"{path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(path) + suffix)
            if src.exists():
                os.replace(src, Path(str(target) + suffix))
                private_file(Path(str(target) + suffix))
        return target

    def close(self) -> None:
        """Close the cache database (the gallery cannot be used afterwards)."""
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _prep_key(self, choice: FaceChoice | None = None) -> str:
        # Everything besides the model that changes an embedding: crop preparation, the detector whose
        # landmarks align the crop, flip-sum, and which face of a group photo the user picked.
        key = f"p{self._embedder.preprocessing_version}/{self._detector.model_id}/flip"
        return key if choice is None else f"{key}/{choice.key()}"

    def _cached(self, sha: str, choice: FaceChoice | None = None) -> tuple[int, np.ndarray | None] | None:
        model_id, prep = self._embedder.model_id, self._prep_key(choice)
        row = self._fetchone(
            "SELECT faces, vector, checksum FROM embeddings WHERE sha256 = ? AND model_id = ? AND prep = ?",
            (sha, model_id, prep),
        )
        if row is None:
            return None
        faces, blob, checksum = int(row[0]), row[1], str(row[2])
        if checksum != _vector_checksum(sha, model_id, prep, faces, blob):
            log.warning(
                "cached embedding of photo %s failed its checksum; embedding the photo again", sha[:12]
            )
            return None
        if faces == 0 or blob is None:
            return faces, None  # no face, or (for a picked face) the picked face is not found
        vector = np.frombuffer(blob, dtype=np.float32)
        if vector.shape[0] != self._embedder.dim or not np.isfinite(vector).all():
            return None  # a damaged row: embed the photo again
        return faces, vector.copy()

    def _store(
        self, sha: str, faces: int, vector: np.ndarray | None, choice: FaceChoice | None = None
    ) -> None:
        blob = None if vector is None else np.asarray(vector, np.float32).tobytes()
        model_id, prep = self._embedder.model_id, self._prep_key(choice)
        self._guarded(
            "INSERT OR REPLACE INTO embeddings(sha256, model_id, prep, faces, vector, checksum, created) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                sha,
                model_id,
                prep,
                faces,
                blob,
                _vector_checksum(sha, model_id, prep, faces, blob),
                time.time(),
            ),
        )

    def _file_sha(self, path: Path, stat: os.stat_result) -> str | None:
        row = self._fetchone("SELECT size, mtime_ns, sha256 FROM files WHERE path = ?", (str(path),))
        if row is not None and row[0] == stat.st_size and row[1] == stat.st_mtime_ns:
            return str(row[2])
        return None

    def _remember_file(self, path: Path, stat: os.stat_result, sha: str) -> None:
        self._guarded(
            "INSERT OR REPLACE INTO files(path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)",
            (str(path), stat.st_size, stat.st_mtime_ns, sha),
        )

    # --------------------------------------------------------------------------------------- reading

    def _person_dirs(self) -> list[Path]:
        try:
            entries = list(self.root.iterdir())
        except OSError as exc:
            raise GalleryError(f"cannot list the gallery folder {self.root}: {exc.strerror or exc}") from exc
        dirs = [p for p in entries if p.is_dir() and not p.name.startswith(".")]
        return sorted(dirs, key=lambda p: _key(p.name))

    @staticmethod
    def _photo_files(folder: Path) -> tuple[list[Path], list[Path]]:
        """(image files, other files) of a person's folder, sorted; hidden and system files skipped."""
        images: list[Path] = []
        others: list[Path] = []
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError:
            return images, others
        for entry in entries:
            if (
                entry.name.startswith(".")
                or entry.name.lower() in _IGNORED_FILES
                or is_sidecar(entry)
                or entry.is_dir()
            ):
                continue
            (images if entry.suffix.lower() in IMAGE_SUFFIXES else others).append(entry)
        return images, others

    def people(self) -> list[PersonInfo]:
        """Everyone in the gallery folder, sorted by name."""
        snap = self._snapshot
        counts = snap.embedded_per_person
        first_used: dict[str, Path] = {}
        for label, path in zip(snap.labels, snap.paths, strict=False):
            first_used.setdefault(label, path)
        out = []
        for folder in self._person_dirs():
            photos, _ = self._photo_files(folder)
            out.append(
                PersonInfo(
                    name=folder.name,
                    path=folder,
                    photos=tuple(photos),
                    thumbnail=photos[0] if photos else None,
                    embedded=counts.get(folder.name, 0),
                    face_photo=first_used.get(folder.name),
                )
            )
        return out

    def _find(self, name: str) -> Path:
        key = _key(name.strip())
        for folder in self._person_dirs():
            if _key(folder.name) == key:
                return folder
        raise GalleryError(f"there is no person {name!r} in the gallery {self.root}")

    # --------------------------------------------------------------------------------------- editing

    def add_person(self, name: str) -> PersonInfo:
        """Create an empty folder for a new person.

        Raises:
            InvalidPersonName: the name is not a safe folder name.
            GalleryError: the person exists already (names are compared ignoring case).
        """
        clean = validate_person_name(name)
        with self._lock:
            if any(_key(p.name) == _key(clean) for p in self._person_dirs()):
                raise GalleryError(f"{clean!r} is already in the gallery")
            folder = self.root / clean
            try:
                folder.mkdir()
            except OSError as exc:
                raise GalleryError(f"cannot create the folder {folder}: {exc.strerror or exc}") from exc
            return PersonInfo(clean, folder, (), None, 0)

    def rename_person(self, old: str, new: str) -> PersonInfo:
        """Rename a person's folder; their embeddings carry over (the cache is keyed by content).

        Raises:
            InvalidPersonName: the new name is not a safe folder name.
            GalleryError: no such person, or the new name is taken.
        """
        clean = validate_person_name(new)
        with self._lock:
            src = self._find(old)
            if any(_key(p.name) == _key(clean) and p != src for p in self._person_dirs()):
                raise GalleryError(f"{clean!r} is already in the gallery")
            dst = self.root / clean
            try:
                if _key(src.name) == _key(clean) and src.name != clean:
                    # A change of case only: go through a temporary name on case-insensitive systems.
                    tmp = self.root / f".rename-{os.getpid()}-{time.monotonic_ns()}"
                    os.rename(src, tmp)
                    os.rename(tmp, dst)
                elif src != dst:
                    os.rename(src, dst)
            except OSError as exc:
                raise GalleryError(f"cannot rename {src.name!r} to {clean!r}: {exc.strerror or exc}") from exc
            snap = self._snapshot
            labels = tuple(clean if lbl == src.name else lbl for lbl in snap.labels)
            counts = {(clean if k == src.name else k): v for k, v in snap.embedded_per_person.items()}
            moved = tuple(dst / p.name if p.parent == src else p for p in snap.paths)
            self._publish(snap.matrix, labels, counts, model_id=snap.model_id, paths=moved)
            photos, _ = self._photo_files(dst)
            return PersonInfo(clean, dst, tuple(photos), photos[0] if photos else None, counts.get(clean, 0))

    def delete_person(self, name: str, backup_dir: Path | str) -> Path:
        """Move a person's folder into ``backup_dir`` (nothing is destroyed).

        Returns:
            where the folder now is.

        Raises:
            GalleryError: no such person, or the folder cannot be moved.
        """
        with self._lock:
            src = self._find(name)
            backup = Path(backup_dir)
            dst = backup / src.name
            if dst.exists():
                dst = backup / f"{src.name} ({time.strftime('%Y-%m-%d %H-%M-%S')})"
            n = 2
            while dst.exists():
                dst = backup / f"{src.name} ({time.strftime('%Y-%m-%d %H-%M-%S')}) {n}"
                n += 1
            try:
                backup.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), str(dst))
            except OSError as exc:
                raise GalleryError(f"cannot move {src} to {dst}: {exc.strerror or exc}") from exc
            snap = self._snapshot
            keep = [i for i, lbl in enumerate(snap.labels) if lbl != src.name]
            counts = {k: v for k, v in snap.embedded_per_person.items() if k != src.name}
            self._publish(
                snap.matrix[keep],
                tuple(snap.labels[i] for i in keep),
                counts,
                model_id=snap.model_id,
                paths=tuple(snap.paths[i] for i in keep) if snap.paths else (),
            )
            log.info("moved %s to %s", src, dst)
            return dst

    # ------------------------------------------------------------------------------------- enrolment

    def _analyse(
        self, image: np.ndarray | None, sha: str, allow_largest: bool, choice: FaceChoice | None = None
    ) -> tuple[PhotoStatus, int, np.ndarray | None]:
        """(status, faces, embedding) of a photo, from the cache, or by embedding ``image`` now.

        ``image`` may be None only when the photo is known to be in the cache. With ``choice`` the face
        the user picked is embedded, whatever the number of faces.
        """
        found = self._cached(sha, choice)
        if found is None:
            if image is None:
                raise GalleryError("internal error: a photo missing from the cache was not decoded")
            if choice is None:
                vector, detections = embed_largest_face(image, self._detector, self._embedder)
            else:
                vector, detections = self._embed_chosen(image, choice)
            found = (len(detections), vector)
            self._store(sha, len(detections), vector, choice)
        faces, vector = found
        if choice is not None and vector is None:
            return (PhotoStatus.CHOICE_LOST if faces else PhotoStatus.NO_FACE), faces, None
        if faces == 0 or vector is None:
            return PhotoStatus.NO_FACE, 0, None
        if faces > 1 and not allow_largest and choice is None:
            return PhotoStatus.SEVERAL_FACES, faces, None
        return PhotoStatus.OK, faces, vector

    def _embed_chosen(
        self, image: np.ndarray, choice: FaceChoice
    ) -> tuple[np.ndarray | None, list[Detection]]:
        detections = self._detector.detect(image)
        chosen = pick_detection(detections, choice)
        if chosen is None:
            return None, detections
        crop = align_face(image, chosen.landmarks)
        return self._embedder.embed(crop[None], flip=True)[0], detections

    @staticmethod
    def _unique_path(folder: Path, stem: str, suffix: str) -> Path:
        stem = stem or "photo"
        candidate = folder / f"{stem}{suffix}"
        n = 2
        existing = {p.name.casefold() for p in folder.iterdir()} if folder.exists() else set()
        while candidate.name.casefold() in existing:
            base, mark = (
                (stem[: -len(_LARGEST_MARK)], _LARGEST_MARK) if stem.endswith(_LARGEST_MARK) else (stem, "")
            )
            candidate = folder / f"{base}-{n}{mark}{suffix}"
            n += 1
        return candidate

    def _folder_hashes(self, folder: Path) -> set[str]:
        hashes = set()
        for photo in self._photo_files(folder)[0]:
            try:
                stat = photo.stat()
                sha = self._file_sha(photo, stat) or _sha256(read_bytes(photo))
            except (OSError, ImageReadError):
                continue
            hashes.add(sha)
        return hashes

    def add_photos(
        self,
        name: str,
        paths: Iterable[Path | str],
        progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        *,
        allow_largest: bool | None = None,
    ) -> EnrollReport:
        """Enrol photos: check each one, copy the good ones into the person's folder, embed them.

        A photo is copied only when it shows one face (or, with ``allow_largest``, several faces: then
        only the largest is used). Bad photos are reported, never copied. The person is created if new.

        Args:
            name: the person.
            paths: photo files.
            progress: called as ``progress(done, total, file name)`` after each photo.
            cancel: set it to stop between photos; photos already copied stay.
            allow_largest: None means the gallery's setting.

        Raises:
            InvalidPersonName: the name is not a safe folder name.
        """
        clean = validate_person_name(name)
        allow = self.allow_largest if allow_largest is None else allow_largest
        items = [Path(p) for p in paths]
        results: list[PhotoResult] = []
        cancelled = False
        with self._lock:
            created = False
            try:
                folder = self._find(clean)
            except GalleryError:
                folder = self.add_person(clean).path
                created = True
            known = self._folder_hashes(folder)
            self._begin()
            try:
                for done, src in enumerate(items, start=1):
                    if cancel is not None and cancel.is_set():
                        cancelled = True
                        break
                    results.append(self._add_one(folder, src, known, allow))
                    if progress is not None:
                        progress(done, len(items), src.name)
            except BaseException:
                self._commit_quietly()
                raise
            self._commit()
            if created and not any(r.ok for r in results):
                # Nothing usable came in: do not leave a new person without photos behind.
                with contextlib.suppress(OSError):
                    folder.rmdir()
            self._sync_locked(None, None)
        return EnrollReport(folder.name, tuple(results), cancelled)

    def _add_one(self, folder: Path, src: Path, known: set[str], allow: bool) -> PhotoResult:
        person = folder.name

        def result(status: PhotoStatus, faces: int = -1, path: Path = src, detail: str = "") -> PhotoResult:
            return PhotoResult(path, person, status, faces, detail or f"{src.name}: {_STATUS_TEXT[status]}")

        if src.suffix.lower() not in IMAGE_SUFFIXES:
            return result(PhotoStatus.NOT_IMAGE)
        try:
            data = read_bytes(src)
        except ImageRefusedError as exc:
            return result(PhotoStatus.REFUSED, detail=str(exc))
        except ImageReadError as exc:
            return result(PhotoStatus.UNREADABLE, detail=str(exc))
        try:
            image = decode_image(data, src.name)
        except ImageRefusedError as exc:
            return result(PhotoStatus.REFUSED, detail=str(exc))
        except ImageReadError as exc:
            return result(PhotoStatus.NOT_IMAGE, detail=str(exc))
        sha = _sha256(data)
        if sha in known:
            return result(PhotoStatus.DUPLICATE)
        try:
            status, faces, _ = self._analyse(image, sha, allow)
        except cv2.error as exc:
            return result(
                PhotoStatus.NOT_IMAGE, detail=f"{src.name}: could not be processed ({exc.err or exc})"
            )
        if status is not PhotoStatus.OK:
            return result(status, faces)
        stem = Path(src.name).stem
        if faces > 1 and not stem.endswith(_LARGEST_MARK):
            # The folder is the truth: the file name, not only the cache, records that the user chose
            # the largest face, so a later sync (or a rebuilt cache) keeps using the photo.
            stem += _LARGEST_MARK
        dst = self._unique_path(folder, stem, src.suffix.lower())
        try:
            atomic_write_bytes(dst, data)
        except OSError as exc:
            # The photo itself was read fine: say why the copy failed (a full disk, most often).
            reason = exc.strerror or str(exc)
            if exc.errno == errno.ENOSPC:
                reason += ": free some space and add it again"
            return result(
                PhotoStatus.NOT_SAVED,
                faces,
                detail=f"{src.name}: could not be saved into {folder} ({reason})",
            )
        known.add(sha)
        return result(PhotoStatus.OK, faces, dst)

    def add_image(self, name: str, image_bgr: np.ndarray) -> PhotoResult:
        """Enrol one camera frame: it must show exactly one face; it is saved as a JPEG and embedded.

        Raises:
            InvalidPersonName: the name is not a safe folder name.
            GalleryError: the frame cannot be saved.
        """
        clean = validate_person_name(name)
        ok, encoded = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
        if not ok:
            raise GalleryError("the camera frame could not be encoded as JPEG")
        data = encoded.tobytes()
        sha = _sha256(data)
        label = f"camera-{time.strftime('%Y%m%d-%H%M%S')}"
        with self._lock:
            try:
                folder = self._find(clean)
            except GalleryError:
                folder = self.add_person(clean).path
            self._begin()
            try:
                status, faces, _ = self._analyse(image_bgr, sha, False)
            except BaseException:
                self._commit_quietly()
                raise
            self._commit()
            if status is not PhotoStatus.OK:
                return PhotoResult(
                    Path(label), folder.name, status, faces, f"camera frame: {_STATUS_TEXT[status]}"
                )
            dst = self._unique_path(folder, label, ".jpg")
            try:
                atomic_write_bytes(dst, data)
            except OSError as exc:
                raise GalleryError(f"cannot save the photo into {folder}: {exc.strerror or exc}") from exc
            self._sync_locked(None, None)
            return PhotoResult(dst, folder.name, PhotoStatus.OK, faces, f"{dst.name}: enrolled")

    # ------------------------------------------------------------------------------- one photo's face

    def detect_photo(self, path: Path | str) -> tuple[np.ndarray, list[Detection]]:
        """Read a photo and find its faces, largest first (for the user to pick one).

        Raises:
            ImageReadError: the file cannot be read or is not an image (ImageRefusedError: too large).
        """
        image = decode_image(read_bytes(Path(path)), Path(path).name)
        with self._lock:
            detections = sorted(self._detector.detect(image), key=_face_area, reverse=True)
        return image, detections

    def inspect_photo(self, path: Path | str) -> PhotoFace:
        """The face a gallery photo contributes (or why none), with its embedding; for reviewing a person.

        The face is the one the sync uses: the picked one, the only one, or the largest where allowed.
        For a photo that is not used, ``detection`` is its largest face when it has any.
        """
        path = Path(path)
        try:
            data = read_bytes(path)
            image = decode_image(data, path.name)
        except ImageRefusedError as exc:
            return PhotoFace(path, PhotoStatus.REFUSED, -1, None, None, None, str(exc))
        except ImageReadError as exc:
            return PhotoFace(path, PhotoStatus.UNREADABLE, -1, None, None, None, str(exc))
        choice = read_choice(path)
        allow = self.allow_largest or path.stem.endswith(_LARGEST_MARK)
        with self._lock:
            try:
                detections = sorted(self._detector.detect(image), key=_face_area, reverse=True)
                self._begin()
                try:
                    status, faces, vector = self._analyse(image, _sha256(data), allow, choice)
                finally:
                    self._commit_quietly()
            except cv2.error as exc:
                return PhotoFace(
                    path, PhotoStatus.NOT_IMAGE, -1, None, None, image, f"{path.name}: {exc.err or exc}"
                )
        chosen = pick_detection(detections, choice) if choice is not None else None
        if chosen is None and detections and choice is None:
            chosen = detections[0]
        return PhotoFace(path, status, faces, chosen, vector, image, f"{path.name}: {_STATUS_TEXT[status]}")

    def choose_face(
        self, name: str, photo: Path | str, box: tuple[float, float, float, float]
    ) -> PhotoResult:
        """Use the face at ``box`` of ``photo`` for ``name``; the choice is kept beside the photo.

        A photo outside the person's folder is copied in first (the same photo already there is reused).
        The person is created if new. The gallery is synced, so the face is in use when this returns.

        Raises:
            InvalidPersonName: the name is not a safe folder name.
            GalleryError: the photo cannot be read, or the photo or its choice cannot be saved.
        """
        clean = validate_person_name(name)
        src = Path(photo).resolve()
        with self._lock:
            try:
                folder = self._find(clean)
            except GalleryError:
                folder = self.add_person(clean).path
            dst = src if src.parent == folder.resolve() else self._copy_in(folder, src)
            try:
                write_choice(dst, box)
            except (OSError, ValueError) as exc:
                raise GalleryError(f"cannot save the face picked in {dst.name}: {exc}") from exc
            report = self._sync_locked(None, None)
        return self._result_of(dst, folder.name, report)

    def _copy_in(self, folder: Path, src: Path) -> Path:
        try:
            data = read_bytes(src)
        except ImageReadError as exc:
            raise GalleryError(str(exc)) from exc
        sha = _sha256(data)
        for existing in self._photo_files(folder)[0]:
            with contextlib.suppress(OSError, ImageReadError):
                if (self._file_sha(existing, existing.stat()) or _sha256(read_bytes(existing))) == sha:
                    return existing
        dst = self._unique_path(folder, src.stem, src.suffix.lower())
        try:
            atomic_write_bytes(dst, data)
        except OSError as exc:
            raise GalleryError(f"cannot save {src.name} into {folder}: {exc.strerror or exc}") from exc
        return dst

    def _result_of(self, path: Path, person: str, report: SyncReport) -> PhotoResult:
        """What the sync that just ran made of ``path``."""
        for problem in report.problems:
            if problem.path == path:
                return problem
        if path in self._snapshot.paths:
            sha = self._file_sha(path, path.stat())
            found = self._cached(sha, read_choice(path)) if sha is not None else None
            faces = found[0] if found is not None else 1
            return PhotoResult(path, person, PhotoStatus.OK, faces, f"{path.name}: enrolled")
        return PhotoResult(path, person, PhotoStatus.UNREADABLE, -1, f"{path.name}: not found after saving")

    def add_face_image(
        self,
        name: str,
        image_bgr: np.ndarray,
        *,
        min_face_px: int = ASSIGN_MIN_FACE_PX,
        min_sharpness: float = ASSIGN_MIN_SHARPNESS,
    ) -> PhotoResult:
        """Enrol a face cut from a video frame (a sighting of an unknown), if it is large and sharp enough.

        The face the crop is centred on is used (a neighbour's face at its edge is ignored: the choice is
        saved beside the photo). Nothing is saved when the face is too small or blurred.

        Raises:
            InvalidPersonName: the name is not a safe folder name.
            GalleryError: the photo cannot be saved.
        """
        clean = validate_person_name(name)
        with self._lock:
            detections = self._detector.detect(image_bgr)
            verdict = _face_quality_problem(image_bgr, detections, min_face_px, min_sharpness)
            if verdict is not None:
                return PhotoResult(Path("face"), clean, *verdict)
            ok, encoded = cv2.imencode(".jpg", image_bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])
            if not ok:
                raise GalleryError("the face could not be encoded as JPEG")
            try:
                folder = self._find(clean)
            except GalleryError:
                folder = self.add_person(clean).path
            dst = self._unique_path(folder, f"face-{time.strftime('%Y%m%d-%H%M%S')}", ".jpg")
            try:
                atomic_write_bytes(dst, encoded.tobytes())
                if len(detections) > 1:
                    write_choice(dst, [float(v) for v in _central_face(image_bgr, detections).box[:4]])
            except OSError as exc:
                raise GalleryError(f"cannot save the face into {folder}: {exc.strerror or exc}") from exc
            report = self._sync_locked(None, None)
        return self._result_of(dst, folder.name, report)

    def remove_photo(self, photo: Path | str, backup_dir: Path | str) -> Path:
        """Move one photo (and the face picked in it) of a person into ``backup_dir/<person>/``.

        Returns:
            where the photo now is.

        Raises:
            GalleryError: the photo is not in the gallery, or cannot be moved.
        """
        src = Path(photo)
        with self._lock:
            if src.resolve().parent.parent != self.root or not src.is_file():
                raise GalleryError(f"{src} is not a photo of this gallery")
            folder = Path(backup_dir) / src.parent.name
            dst = folder / src.name
            n = 2
            while dst.exists():
                dst = folder / f"{src.stem}-{n}{src.suffix}"
                n += 1
            try:
                folder.mkdir(parents=True, exist_ok=True)
                shutil.move(str(src), str(dst))
                if sidecar_path(src).exists():
                    shutil.move(str(sidecar_path(src)), str(sidecar_path(dst)))
            except OSError as exc:
                raise GalleryError(f"cannot move {src} to {dst}: {exc.strerror or exc}") from exc
            self._sync_locked(None, None)
            log.info("moved %s to %s", src, dst)
            return dst

    # ------------------------------------------------------------------------------------------ sync

    def sync(
        self, progress: ProgressCallback | None = None, cancel: threading.Event | None = None
    ) -> SyncReport:
        """Bring the embeddings in line with the folder, embedding only new or changed photos.

        Args:
            progress: called as ``progress(done, total, "Person/photo.jpg")`` after each photo.
            cancel: set it to stop between photos; the embeddings in use then stay as they were,
                and what was embedded so far is kept in the cache.

        Raises:
            GalleryError: the gallery folder cannot be listed.
        """
        with self._lock:
            return self._sync_locked(progress, cancel)

    def _sync_locked(self, progress: ProgressCallback | None, cancel: threading.Event | None) -> SyncReport:
        try:
            return self._sync_once(progress, cancel)
        except sqlite3.DatabaseError as exc:
            rollback_quietly(self._conn)
            if classify(exc) is SqliteProblem.CORRUPT:
                # The file was damaged while in use: move it aside, start a new one, then retry once.
                log.warning("embedding cache %s is damaged (%s); rebuilding it", self.cache_path, exc)
                self._conn.close()
                try:
                    if str(self.cache_path) != ":memory:" and self.cache_path.exists():
                        self.cache_recovered_from = self._move_aside(self.cache_path)
                    self._conn = self._open_cache()
                except OSError as err:  # it cannot be moved (a read-only folder): do without it
                    self._conn = self._memory_cache(err)
            else:
                self._use_memory_cache(exc)
            return self._sync_once(progress, cancel)

    def _sync_once(self, progress: ProgressCallback | None, cancel: threading.Event | None) -> SyncReport:
        folders = self._person_dirs()
        work: list[tuple[str, Path]] = []
        problems: list[PhotoResult] = []
        for folder in folders:
            images, others = self._photo_files(folder)
            work.extend((folder.name, p) for p in images)
            problems.extend(
                PhotoResult(
                    p,
                    folder.name,
                    PhotoStatus.NOT_IMAGE,
                    -1,
                    f"{folder.name}/{p.name}: not used, {_STATUS_TEXT[PhotoStatus.NOT_IMAGE]}",
                )
                for p in others
            )
        vectors: list[np.ndarray] = []
        labels: list[str] = []
        paths: list[Path] = []
        counts: dict[str, int] = {f.name: 0 for f in folders}
        embedded = cached = 0
        pending = 0
        self._begin()
        try:
            for done, (person, path) in enumerate(work, start=1):
                if cancel is not None and cancel.is_set():
                    self._commit()
                    snap = self._snapshot
                    return SyncReport(
                        len(folders),
                        len(work),
                        len(snap.labels),
                        embedded,
                        cached,
                        tuple(problems),
                        True,
                        snap.model_id,
                    )
                item = f"{person}/{path.name}"
                outcome, source = self._sync_photo(person, path, item)
                if isinstance(outcome, PhotoResult):
                    problems.append(outcome)
                else:
                    vectors.append(outcome)
                    labels.append(person)
                    paths.append(path)
                    counts[person] += 1
                if source == "cache":
                    cached += 1
                elif source == "model":
                    embedded += 1
                    pending += 1
                    if pending >= _COMMIT_EVERY:
                        self._commit()
                        self._begin()
                        pending = 0
                if progress is not None:
                    progress(done, len(work), item)
        except BaseException:
            self._commit_quietly()
            raise
        self._commit()
        matrix = (
            np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, self._embedder.dim), np.float32)
        )
        self._publish(matrix, tuple(labels), counts, model_id=self._embedder.model_id, paths=tuple(paths))
        for problem in problems:
            log.info("gallery: %s", problem.message)
        return SyncReport(
            people=len(folders),
            photos=len(work),
            usable=len(labels),
            embedded=embedded,
            cached=cached,
            problems=tuple(problems),
            cancelled=False,
            model_id=self._embedder.model_id,
        )

    def _sync_photo(self, person: str, path: Path, item: str) -> tuple[np.ndarray | PhotoResult, str]:
        """(embedding or the problem, where the answer came from: "cache", "model" or "none")."""

        def problem(status: PhotoStatus, detail: str = "", faces: int = -1) -> PhotoResult:
            return PhotoResult(path, person, status, faces, f"{item}: {detail or _STATUS_TEXT[status]}")

        data: bytes | None = None
        try:
            stat = path.stat()
            sha = self._file_sha(path, stat)
            if sha is None:
                data = read_bytes(path)
                sha = _sha256(data)
                self._remember_file(path, stat, sha)
        except ImageRefusedError as exc:
            return problem(PhotoStatus.REFUSED, f"not used: {exc}"), "none"
        except (OSError, ImageReadError) as exc:
            return problem(PhotoStatus.UNREADABLE, f"cannot be read ({exc})"), "none"
        choice = read_choice(path)
        source = "cache" if self._cached(sha, choice) is not None else "model"
        image = None
        if source == "model":
            try:
                image = decode_image(data if data is not None else read_bytes(path), item)
            except ImageRefusedError as exc:
                return problem(PhotoStatus.REFUSED, f"not used: {exc}"), "none"
            except ImageReadError:
                return problem(PhotoStatus.NOT_IMAGE), "none"
        allow = self.allow_largest or path.stem.endswith(_LARGEST_MARK)
        try:
            status, faces, vector = self._analyse(image, sha, allow, choice)
        except cv2.error as exc:
            # One photo the models choke on must not stop the whole gallery from loading.
            return problem(PhotoStatus.NOT_IMAGE, f"could not be processed ({exc.err or exc})"), "none"
        if status is not PhotoStatus.OK or vector is None:
            return problem(status, faces=faces), source
        return vector, source

    def _publish(
        self,
        matrix: np.ndarray,
        labels: tuple[str, ...],
        counts: dict[str, int],
        *,
        model_id: str = "",
        paths: tuple[Path, ...] = (),
    ) -> None:
        matrix = np.ascontiguousarray(matrix, dtype=np.float32)
        matrix.setflags(write=False)
        self._snapshot = GallerySnapshot(
            matrix,
            labels,
            model_id,
            self._snapshot.version + 1,
            counts,
            paths if len(paths) == len(labels) else (),
        )
