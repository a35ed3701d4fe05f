"""Gallery jobs off the GUI thread: enrolment, re-embedding, renames and deletes, and camera enrolment.

Two workers, each in its own ``QThread`` owned by a GUI-thread controller that relays its signals
signal-to-signal (:mod:`app.threads`):

* :class:`GalleryWorker` owns a :class:`core.gallery.Gallery` with its own detector and embedder (model
  objects are never shared between threads) and runs queued jobs one at a time, with progress and Cancel.
* :class:`EnrollCaptureWorker` reads a frame source, detects faces and asks
  :class:`core.enrollment.CaptureGuide` whether each frame is a good, new shot.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
from PySide6.QtCore import QFile, QObject, Signal, Slot

from app.threads import ThreadController, ThreadWorker
from core._image import decode_image
from core.capture import open_source
from core.detection import Detector
from core.engine import GalleryView, build_detector, build_embedder, configure_detector, open_store_gallery
from core.enrollment import CaptureGuide, GuideConfig
from core.face_choice import sidecar_path
from core.gallery import Gallery, PersonInfo, PhotoResult
from core.person_review import PersonReview, face_jpeg, review_person
from core.settings import Rebuild, Settings, effective_threshold, rebuilds

__all__ = [
    "AddImages",
    "AddPerson",
    "AddPhotos",
    "AssignFace",
    "ChooseFace",
    "DeletePerson",
    "DetectFaces",
    "EnrollCaptureController",
    "EnrollFrame",
    "GalleryController",
    "GalleryJob",
    "GalleryJobResult",
    "GalleryWorker",
    "FaceCandidates",
    "RefreshPeople",
    "RemovePhoto",
    "RemovedPerson",
    "RemovedPhoto",
    "RenamePerson",
    "ReviewPerson",
    "SyncGallery",
    "UseSettings",
    "move_to_trash",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RemovedPerson:
    """Where a deleted person's folder went: the system trash or the app's backup folder."""

    name: str
    location: Path
    in_system_trash: bool


@dataclass(frozen=True, slots=True)
class RemovedPhoto:
    """Where a removed photo went: the system trash or the app's backup folder."""

    path: Path
    location: Path
    in_system_trash: bool


@dataclass(frozen=True, slots=True)
class FaceCandidates:
    """The faces found in a photo, for the user to pick one.

    Attributes:
        path: the photo.
        preview: ``(h, w, 3) uint8`` BGR, the photo scaled down to at most :data:`PREVIEW_PX`.
        scale: preview pixels per photo pixel.
        boxes: each face's ``(x1, y1, x2, y2)`` in photo pixels, largest first.
        crops: a small JPEG of each face, in the same order.
    """

    path: Path
    preview: np.ndarray
    scale: float
    boxes: tuple[tuple[float, float, float, float], ...]
    crops: tuple[bytes, ...]


# Longer side of the photo shown in the face picker; the boxes are kept in the photo's own pixels.
PREVIEW_PX = 1280


@dataclass(frozen=True, slots=True)
class GalleryJobResult:
    """The outcome of one gallery job: its kind, what the core call returned, and the job itself."""

    kind: str
    value: Any
    cancelled: bool = False
    job: GalleryJob | None = None


def trash_dir() -> Path:
    from core.paths import data_dir

    return data_dir() / "trash"


def move_photo_to_trash(gallery: Gallery, photo: Path, *, use_system_trash: bool = True) -> RemovedPhoto:
    """Move one photo of a person (and the face picked in it) to the system trash, else the backup folder."""
    if use_system_trash and photo.parent.parent == gallery.root:
        handle = QFile(str(photo))
        if handle.moveToTrash() and Path(handle.fileName()).exists():
            side = sidecar_path(photo)
            if side.exists() and not QFile(str(side)).moveToTrash():
                side.unlink(missing_ok=True)  # only the choice of a face in a photo now in the trash
            gallery.sync()
            log.info("moved %s to the system trash at %s", photo, handle.fileName())
            return RemovedPhoto(photo, Path(handle.fileName()), True)
        log.info("the system trash refused %s; using the backup folder", photo)
    return RemovedPhoto(photo, gallery.remove_photo(photo, trash_dir()), False)


def move_to_trash(gallery: Any, name: str, *, use_system_trash: bool = True) -> RemovedPerson:
    """Move a person's folder to the system trash, or, when that fails, to the app's backup folder.

    Nothing is destroyed either way: the returned location holds every photo.
    """
    folder = next((p.path for p in gallery.people() if p.name.casefold() == name.casefold()), None)
    # A shared gallery has no folder: its photos stay on the server, marked deleted.
    if folder is not None and use_system_trash and not hasattr(gallery, "conninfo"):
        handle = QFile(str(folder))
        # The instance form reports where the trash put the folder (its file name changes).
        ok = handle.moveToTrash()
        where = handle.fileName()
        if ok and where and Path(where).exists():
            gallery.sync()
            log.info("moved %s to the system trash at %s", folder, where)
            return RemovedPerson(folder.name, Path(where), True)
        log.info("the system trash refused %s; using the backup folder", folder)
    location = gallery.delete_person(name, trash_dir())
    return RemovedPerson(Path(location).name, Path(location), False)


# -- gallery jobs ------------------------------------------------------------------------------------
# One frozen dataclass per job: what the job needs, nothing else. ``kind`` names it to the UI (status
# texts, GalleryJobResult.kind); ``cancellable`` says whether Cancel can stop it part-way;
# ``changes_gallery`` whether the live pipeline must reload the gallery after it.


@dataclass(frozen=True, slots=True)
class RefreshPeople:
    """List the people again (the folder may have been edited in a file manager)."""

    kind: ClassVar[str] = "refresh"
    cancellable: ClassVar[bool] = False
    changes_gallery: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class SyncGallery:
    """Embed every new or changed photo with the current model."""

    kind: ClassVar[str] = "sync"
    cancellable: ClassVar[bool] = True
    changes_gallery: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class AddPerson:
    """Create an empty folder for a new person."""

    name: str
    kind: ClassVar[str] = "add_person"
    cancellable: ClassVar[bool] = False
    changes_gallery: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class RenamePerson:
    """Rename a person's folder."""

    old: str
    new: str
    kind: ClassVar[str] = "rename"
    cancellable: ClassVar[bool] = False
    changes_gallery: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class DeletePerson:
    """Move a person's folder to the system trash, or to the app's backup folder."""

    name: str
    use_system_trash: bool = True
    kind: ClassVar[str] = "delete"
    cancellable: ClassVar[bool] = False
    changes_gallery: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class AddPhotos:
    """Copy photo files into a person's folder and embed them, with a report per file."""

    name: str
    paths: tuple[str, ...]
    kind: ClassVar[str] = "add_photos"
    cancellable: ClassVar[bool] = True
    changes_gallery: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class AddImages:
    """Save camera shots (BGR images) as photos of a person and embed them."""

    name: str
    images: tuple[np.ndarray, ...]
    kind: ClassVar[str] = "add_images"
    cancellable: ClassVar[bool] = True
    changes_gallery: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class UseSettings:
    """Open the gallery folder and build the models that new settings ask for."""

    settings: Settings
    kind: ClassVar[str] = "settings"
    cancellable: ClassVar[bool] = False
    changes_gallery: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class DetectFaces:
    """Find the faces of a photo, for the user to pick the person's (nothing changes)."""

    path: str
    kind: ClassVar[str] = "detect_faces"
    cancellable: ClassVar[bool] = False
    changes_gallery: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class ChooseFace:
    """Use the face at ``box`` of a photo for a person; the choice is saved beside the photo."""

    name: str
    path: str
    box: tuple[float, float, float, float]
    kind: ClassVar[str] = "choose_face"
    cancellable: ClassVar[bool] = False
    changes_gallery: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class ReviewPerson:
    """Review one person's photos: face, quality and agreement with the others (nothing changes)."""

    name: str
    kind: ClassVar[str] = "review"
    cancellable: ClassVar[bool] = True
    changes_gallery: ClassVar[bool] = False


@dataclass(frozen=True, slots=True)
class RemovePhoto:
    """Move one photo of a person to the system trash, or to the app's backup folder."""

    path: str
    use_system_trash: bool = True
    kind: ClassVar[str] = "remove_photo"
    cancellable: ClassVar[bool] = False
    changes_gallery: ClassVar[bool] = True


@dataclass(frozen=True, slots=True)
class AssignFace:
    """Save a face seen in the video (a BGR crop) as a new photo of a person, if it is good enough."""

    name: str
    image: np.ndarray | None = None  # (H, W, 3) uint8 BGR
    jpeg: bytes = b""  # or the face as a JPEG (an event's thumbnail), decoded in the worker
    kind: ClassVar[str] = "assign_face"
    cancellable: ClassVar[bool] = False
    changes_gallery: ClassVar[bool] = True


GalleryJob = (
    RefreshPeople
    | SyncGallery
    | AddPerson
    | RenamePerson
    | DeletePerson
    | AddPhotos
    | AddImages
    | UseSettings
    | DetectFaces
    | ChooseFace
    | ReviewPerson
    | RemovePhoto
    | AssignFace
)

# A settings change that gives the gallery another folder or other models.
_GALLERY_PARTS = frozenset({Rebuild.GALLERY, Rebuild.DETECTOR, Rebuild.EMBEDDER})


@dataclass(frozen=True, slots=True)
class _Queued:
    """A job and its own Cancel flag, created when the job is submitted (so a Cancel reaches it queued)."""

    job: GalleryJob
    cancel: threading.Event


class GalleryWorker(ThreadWorker):
    """Runs gallery jobs in order on its own thread; :meth:`submit`, :meth:`cancel` are thread-safe.

    It owns the :class:`core.gallery.Gallery` of the settings' folder with its own detector and
    embedder, built by :mod:`core.engine` exactly as the live worker builds its own (model objects are
    never shared between threads).
    """

    people_ready = Signal(object)  # list[PersonInfo]
    progress = Signal(int, int, str)  # done, total, item
    job_started = Signal(str)  # the job's kind
    job_finished = Signal(object)  # GalleryJobResult
    job_failed = Signal(object, object)  # the job, the exception it raised

    def __init__(self, settings: Settings, view: GalleryView | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._view = view if view is not None else GalleryView()
        self._jobs: queue.Queue[_Queued] = queue.Queue()
        self._lock = threading.Lock()
        self._open: list[_Queued] = []  # submitted and not finished: what Cancel reaches
        self._gallery: Gallery | None = None
        self._built_with: Settings | None = None
        # Face crops of the people's tiles, by (photo, size, mtime): a photo is decoded once a session.
        self._tile_faces: dict[tuple[str, int, int], bytes] = {}

    def submit(self, job: GalleryJob) -> None:
        """Queue ``job``; it runs after every job submitted before it."""
        queued = _Queued(job, threading.Event())
        with self._lock:
            self._open.append(queued)
        self._jobs.put(queued)

    def cancel(self) -> None:
        """Cancel the running job and every queued one that can be cancelled."""
        with self._lock:
            for queued in self._open:
                queued.cancel.set()

    def set_settings(self, settings: Settings) -> None:
        """Settings for the next job (live values such as the detection resolution reach its models)."""
        with self._lock:
            self._settings = settings

    def request_stop(self) -> None:
        """Stop after the current job; the running and queued jobs are cancelled."""
        super().request_stop()
        self.cancel()

    def work(self) -> None:
        """Run the queued jobs in order until asked to stop; close the gallery at the end."""
        try:
            while not self.stop_event.is_set():
                try:
                    queued = self._jobs.get(timeout=0.1)
                except queue.Empty:
                    continue
                self._run_job(queued)
        finally:
            self._view.publish(None)
            if self._gallery is not None:
                self._gallery.close()

    def _run_job(self, queued: _Queued) -> None:
        job = queued.job
        self.job_started.emit(job.kind)
        outcome: GalleryJobResult | Exception
        try:
            value = self._execute(job, queued.cancel)
            outcome = GalleryJobResult(job.kind, value, bool(getattr(value, "cancelled", False)), job)
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user, the worker goes on
            log.warning("gallery job %s failed: %s", job.kind, exc)
            outcome = exc
        finally:
            with self._lock:
                self._open.remove(queued)
        self._report(outcome, job)

    def _report(self, outcome: GalleryJobResult | Exception, job: GalleryJob) -> None:
        # The people first: whoever hears that a job ended sees the gallery as the job left it.
        people: list[PersonInfo] = []
        try:
            if self._gallery is not None:
                people = self._gallery.people()
                self.people_ready.emit(self._with_faces(people))
        except Exception as exc:  # noqa: BLE001 - a folder that cannot be listed is reported, not fatal
            self.error.emit(exc)
        if isinstance(outcome, Exception):
            self.job_failed.emit(job, outcome)
        else:
            self.job_finished.emit(outcome)
        if self._gallery is not None and self._cut_faces(self._gallery, people):
            # Then the faces not cut out before (each photo once a session): a large gallery's first
            # listing waits for no photo to be decoded.
            self.people_ready.emit(self._with_faces(people))

    @staticmethod
    def _tile_key(photo: Path) -> tuple[str, int, int] | None:
        try:
            st = photo.stat()
        except OSError:
            return None
        return (str(photo), st.st_size, st.st_mtime_ns)

    def _with_faces(self, people: list[PersonInfo]) -> list[PersonInfo]:
        """The people, each with the crop of the face of their first photo in use when it is cut out."""
        out = []
        for person in people:
            key = self._tile_key(person.face_photo) if person.face_photo is not None else None
            face = self._tile_faces.get(key) if key is not None else None
            out.append(replace(person, face_jpeg=face) if face else person)
        return out

    def _cut_faces(self, gallery: Gallery, people: list[PersonInfo]) -> int:
        """Cut out the tile faces not cut yet (stops early when asked to stop); returns how many."""
        done = 0
        for person in people:
            if self.stop_event.is_set():
                break
            key = self._tile_key(person.face_photo) if person.face_photo is not None else None
            if key is None or key in self._tile_faces or person.face_photo is None:
                continue
            face = gallery.inspect_photo(person.face_photo)
            self._tile_faces[key] = (
                face_jpeg(face.image, face.detection.box)
                if face.image is not None and face.detection is not None
                else b""
            )
            done += 1
        return done

    def _ensure_gallery(self) -> Gallery:
        """The gallery for the latest settings, rebuilding only what they changed."""
        with self._lock:
            settings = self._settings
        gallery, old = self._gallery, self._built_with
        if gallery is None or old is None:
            gallery = self._open_gallery(settings, build_detector(settings), build_embedder(settings))
        else:
            parts = rebuilds(old, settings)
            detector = build_detector(settings) if Rebuild.DETECTOR in parts else gallery.detector
            embedder = build_embedder(settings) if Rebuild.EMBEDDER in parts else gallery.embedder
            configure_detector(detector, settings)
            if Rebuild.GALLERY in parts:
                self._view.publish(None)
                gallery.close()
                gallery = self._open_gallery(settings, detector, embedder)
            else:
                gallery.set_detector(detector)
                if embedder is not gallery.embedder:
                    gallery.set_embedder(embedder)
        self._gallery, self._built_with = gallery, settings
        self._view.publish(gallery)
        return gallery

    def _open_gallery(self, settings: Settings, detector: Any, embedder: Any) -> Gallery:
        gallery = open_store_gallery(settings, detector, embedder)
        if hasattr(gallery, "on_change"):
            # A shared gallery changed by another station: the list follows (signals cross threads).
            gallery.on_change.append(lambda: self.people_ready.emit(gallery.people()))
        return gallery  # type: ignore[return-value]

    def _progress(self, done: int, total: int, item: str) -> None:
        self.progress.emit(done, total, item)

    def _execute(self, job: GalleryJob, cancel: threading.Event) -> Any:
        if isinstance(job, UseSettings):
            self.set_settings(job.settings)
        gallery = self._ensure_gallery()
        match job:
            case RefreshPeople() | UseSettings():
                return None
            case SyncGallery():
                return gallery.sync(progress=self._progress, cancel=cancel)
            case AddPerson(name):
                return gallery.add_person(name)
            case RenamePerson(old, new):
                return gallery.rename_person(old, new)
            case DeletePerson(name, use_system_trash):
                return move_to_trash(gallery, name, use_system_trash=use_system_trash)
            case AddPhotos(name, paths):
                return gallery.add_photos(
                    name, [Path(p) for p in paths], progress=self._progress, cancel=cancel
                )
            case AddImages(name, images):
                return self._add_images(gallery, name, images, cancel)
            case DetectFaces(path):
                return _face_candidates(gallery, Path(path))
            case ChooseFace(name, path, box):
                return gallery.choose_face(name, Path(path), box)
            case ReviewPerson(name):
                return self._review(gallery, name, cancel)
            case RemovePhoto(path, use_system_trash):
                return move_photo_to_trash(gallery, Path(path), use_system_trash=use_system_trash)
            case AssignFace(name, image, jpeg):
                return gallery.add_face_image(
                    name, image if image is not None else decode_image(jpeg, "face")
                )
        raise TypeError(f"not a gallery job: {job!r}")

    def _review(self, gallery: Gallery, name: str, cancel: threading.Event) -> PersonReview:
        with self._lock:
            recognition = self._settings.recognition
        threshold = effective_threshold(recognition, gallery.embedder.suggested_threshold)
        return review_person(gallery, name, threshold, progress=self._progress, cancel=cancel)

    def _add_images(
        self, gallery: Gallery, name: str, images: Sequence[np.ndarray], cancel: threading.Event
    ) -> list[PhotoResult]:
        results = []
        for done, image in enumerate(images, start=1):
            if cancel.is_set():
                break
            results.append(gallery.add_image(name, image))
            self._progress(done, len(images), f"shot {done}")
        return results


def _face_candidates(gallery: Gallery, path: Path) -> FaceCandidates:
    image, detections = gallery.detect_photo(path)
    scale = min(1.0, PREVIEW_PX / max(image.shape[:2]))
    preview = (
        cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1.0 else image
    )
    boxes = tuple((float(d.box[0]), float(d.box[1]), float(d.box[2]), float(d.box[3])) for d in detections)
    crops = tuple(face_jpeg(image, box) for box in boxes)
    return FaceCandidates(path, np.ascontiguousarray(preview), scale, boxes, crops)


class GalleryController(ThreadController):
    """Owns the gallery worker thread; lives in the GUI thread. Connect only to these signals.

    ``busy_changed`` is True from a job's submission until the queue is empty; ``gallery_changed``
    fires after every job that may have changed the people or their embeddings (the live pipeline
    then reloads). A job's failure comes as ``error``.

    Its worker is the one owner of the gallery folder; :attr:`view` lets the live pipeline read the
    embeddings it publishes, from any thread.
    """

    people_ready = Signal(object)
    progress = Signal(int, int, str)
    job_started = Signal(str)
    job_finished = Signal(object)
    gallery_changed = Signal()
    busy_changed = Signal(bool)

    #: A job failed: (the job, the exception); ``error`` carries the same exception.
    job_failed = Signal(object, object)

    _finished_in = Signal(object)
    _failed_in = Signal(object, object)

    thread_name = "gallery"
    drop_stale_on_stop = False

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self.view = GalleryView()
        self._pending = 0
        #: Deleted people go to the system trash (else to the app's backup folder).
        self.use_system_trash = True
        self._finished_in.connect(self._on_finished_job)
        self._failed_in.connect(self._on_failed_job)

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished yet."""
        return self._pending

    def start(self) -> None:
        """Start the worker thread (the first job starts it too)."""
        if self.is_running():
            return
        worker = GalleryWorker(self._settings, self.view)
        self._launch(
            worker,
            [
                (worker.people_ready, self.people_ready),
                (worker.progress, self.progress),
                (worker.job_started, self.job_started),
                (worker.job_finished, self._finished_in),
                (worker.job_failed, self._failed_in),
            ],
        )

    def submit(self, job: GalleryJob) -> None:
        """Queue ``job`` on the worker; ``job_finished`` or ``error`` follows."""
        self.start()
        self._pending += 1
        if self._pending == 1:
            self.busy_changed.emit(True)
        worker = self._worker
        assert isinstance(worker, GalleryWorker)
        worker.submit(job)

    def refresh(self) -> None:
        """List the people again."""
        self.submit(RefreshPeople())

    def delete(self, name: str) -> None:
        """Remove a person (to the system trash when :attr:`use_system_trash`)."""
        self.submit(DeletePerson(name, self.use_system_trash))

    def apply_settings(self, settings: Settings) -> None:
        """Use new settings; a new model or folder is loaded and embedded in the background."""
        parts = rebuilds(self._settings, settings)
        self._settings = settings
        if isinstance(self._worker, GalleryWorker):
            self._worker.set_settings(settings)
        if parts & _GALLERY_PARTS:
            self.submit(UseSettings(settings))
            if parts & {Rebuild.GALLERY, Rebuild.EMBEDDER}:
                self.submit(SyncGallery())

    def cancel(self) -> None:
        """Cancel the running job and the queued ones, photo by photo (what is done stays)."""
        if isinstance(self._worker, GalleryWorker):
            self._worker.cancel()

    def _done_one(self) -> None:
        self._pending = max(0, self._pending - 1)
        if self._pending == 0:
            self.busy_changed.emit(False)

    @Slot(object)
    def _on_finished_job(self, result: GalleryJobResult) -> None:
        self._done_one()
        self.job_finished.emit(result)
        if result.job is None or result.job.changes_gallery:
            self.gallery_changed.emit()

    @Slot(object, object)
    def _on_failed_job(self, job: GalleryJob, exc: Exception) -> None:
        self._done_one()
        self.error.emit(exc)
        self.job_failed.emit(job, exc)


# -- camera enrolment --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EnrollFrame:
    """One judged frame for the enrolment dialog."""

    image: np.ndarray  # (H, W, 3) uint8 BGR
    boxes: tuple[tuple[float, float, float, float], ...]
    verdict: Any  # core.enrollment.ShotVerdict
    shots: int
    target: int


class EnrollCaptureWorker(ThreadWorker):
    """Reads the source, detects, and lets a :class:`core.enrollment.CaptureGuide` keep good shots."""

    frame_ready = Signal(object)  # EnrollFrame
    finished_shots = Signal(object)  # list[np.ndarray], the kept frames

    def __init__(self, settings: Settings, target_shots: int = 8) -> None:
        super().__init__()
        self._settings = settings
        self._target = target_shots
        self._gui_free = threading.Event()
        self._gui_free.set()
        self.shots: list[np.ndarray] = []

    def acknowledge(self) -> None:
        """The GUI has drawn the last frame: the next one may be sent."""
        self._gui_free.set()

    def work(self) -> None:
        s = self._settings
        detector = build_detector(s)
        guide = CaptureGuide(build_embedder(s).embed, GuideConfig(target_shots=self._target))
        cam = s.camera
        with open_source(cam.source, width=cam.width, height=cam.height, loop=True, realtime=True) as source:
            for frame in source:
                if self.stop_event.is_set() or self._judge(frame.image, detector, guide):
                    break
        self.finished_shots.emit(list(self.shots))

    def _judge(self, image: np.ndarray, detector: Detector, guide: CaptureGuide) -> bool:
        """Detect, let the guide judge the frame, show it; True once enough good shots are kept."""
        detections = detector.detect(image)
        verdict = guide.assess(image, detections)
        if verdict.accepted:
            self.shots = [shot.image for shot in guide.shots]
        # A frame is shown only when the GUI drew the previous one (latest frame wins), but a kept
        # shot always is, so that the counter never skips.
        if self._gui_free.is_set() or verdict.accepted:
            self._gui_free.clear()
            boxes = tuple(
                (float(d.box[0]), float(d.box[1]), float(d.box[2]), float(d.box[3])) for d in detections
            )
            self.frame_ready.emit(EnrollFrame(image, boxes, verdict, guide.count, self._target))
        return guide.done


class EnrollCaptureController(ThreadController):
    """Owns the enrolment capture thread; lives in the GUI thread."""

    frame_ready = Signal(object)
    finished_shots = Signal(object)

    _frame_in = Signal(object)

    thread_name = "enrol-capture"
    drop_stale_on_stop = False

    def __init__(self, settings: Settings, target_shots: int = 8, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._target = target_shots
        self._shots: list[np.ndarray] = []
        self._frame_in.connect(self._on_frame)

    def start(self) -> None:
        """Start capturing (once)."""
        if self.is_running():
            return
        worker = EnrollCaptureWorker(self._settings, self._target)
        self._launch(
            worker, [(worker.frame_ready, self._frame_in), (worker.finished_shots, self.finished_shots)]
        )

    def shots(self) -> Sequence[np.ndarray]:
        """The good shots kept so far (also after the capture ended)."""
        worker = self._worker
        return list(worker.shots) if isinstance(worker, EnrollCaptureWorker) else list(self._shots)

    def _on_finished(self, worker: ThreadWorker | None) -> None:
        if isinstance(worker, EnrollCaptureWorker):
            self._shots = list(worker.shots)

    @Slot(object)
    def _on_frame(self, frame: EnrollFrame) -> None:
        try:
            self.frame_ready.emit(frame)
        finally:
            if isinstance(self._worker, EnrollCaptureWorker):
                self._worker.acknowledge()
