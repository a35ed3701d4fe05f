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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PySide6.QtCore import QFile, QObject, Signal, Slot

from app.threads import ThreadController, ThreadWorker
from core.capture import open_source
from core.detection import Detector
from core.engine import GalleryView, build_detector, build_embedder, configure_detector, open_store_gallery
from core.enrollment import CaptureGuide, GuideConfig
from core.gallery import Gallery, PhotoResult
from core.settings import Rebuild, Settings, rebuilds

__all__ = [
    "AddImages",
    "AddPerson",
    "AddPhotos",
    "DeletePerson",
    "EnrollCaptureController",
    "EnrollFrame",
    "GalleryController",
    "GalleryJob",
    "GalleryJobResult",
    "GalleryWorker",
    "RefreshPeople",
    "RemovedPerson",
    "RenamePerson",
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
class GalleryJobResult:
    """The outcome of one gallery job: its kind, what the core call returned, and the job itself."""

    kind: str
    value: Any
    cancelled: bool = False
    job: GalleryJob | None = None


def trash_dir() -> Path:
    from core.paths import data_dir

    return data_dir() / "trash"


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


GalleryJob = (
    RefreshPeople
    | SyncGallery
    | AddPerson
    | RenamePerson
    | DeletePerson
    | AddPhotos
    | AddImages
    | UseSettings
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
    job_failed = Signal(object)  # the exception a job raised

    def __init__(self, settings: Settings, view: GalleryView | None = None) -> None:
        super().__init__()
        self._settings = settings
        self._view = view if view is not None else GalleryView()
        self._jobs: queue.Queue[_Queued] = queue.Queue()
        self._lock = threading.Lock()
        self._open: list[_Queued] = []  # submitted and not finished: what Cancel reaches
        self._gallery: Gallery | None = None
        self._built_with: Settings | None = None

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
        self._report(outcome)

    def _report(self, outcome: GalleryJobResult | Exception) -> None:
        # The people first: whoever hears that a job ended sees the gallery as the job left it.
        try:
            if self._gallery is not None:
                self.people_ready.emit(self._gallery.people())
        except Exception as exc:  # noqa: BLE001 - a folder that cannot be listed is reported, not fatal
            self.error.emit(exc)
        if isinstance(outcome, Exception):
            self.job_failed.emit(outcome)
        else:
            self.job_finished.emit(outcome)

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
        raise TypeError(f"not a gallery job: {job!r}")

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

    _finished_in = Signal(object)
    _failed_in = Signal(object)

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

    @Slot(object)
    def _on_failed_job(self, exc: Exception) -> None:
        self._done_one()
        self.error.emit(exc)


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
