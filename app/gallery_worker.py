"""Gallery jobs off the GUI thread: enrolment, re-embedding, renames and deletes, and camera enrolment.

Two workers, each in its own ``QThread`` owned by a GUI-thread controller that relays its signals
signal-to-signal (PLATFORM.md, "Qt threads: measured traps"):

* :class:`GalleryWorker` owns a :class:`core.gallery.Gallery` with its own detector and embedder (model
  objects are never shared between threads) and runs queued jobs one at a time, with progress and Cancel.
* :class:`EnrollCaptureWorker` reads a frame source, detects faces and asks
  :class:`core.enrollment.CaptureGuide` whether each frame is a good, new shot.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QFile, QObject, QThread, Signal, Slot

from core.settings import Settings

__all__ = [
    "EnrollCaptureController",
    "EnrollFrame",
    "GalleryController",
    "GalleryJobResult",
    "GalleryWorker",
    "gallery_root",
    "RemovedPerson",
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
    """The outcome of one gallery job: its kind, and what the core call returned."""

    kind: str
    value: Any
    cancelled: bool = False


def trash_dir() -> Path:
    from core.paths import data_dir

    return data_dir() / "trash"


def move_to_trash(gallery: Any, name: str, *, use_system_trash: bool = True) -> RemovedPerson:
    """Move a person's folder to the system trash, or, when that fails, to the app's backup folder.

    Nothing is destroyed either way: the returned location holds every photo.
    """
    folder = next((p.path for p in gallery.people() if p.name.casefold() == name.casefold()), None)
    if folder is not None and use_system_trash:
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


def gallery_root(settings: Settings) -> Path:
    from core.paths import default_gallery_dir

    return Path(settings.gallery_dir).expanduser() if settings.gallery_dir else default_gallery_dir()


class GalleryWorker(QObject):
    """Runs gallery jobs in order on its own thread. Submit with :meth:`submit`; thread-safe."""

    people_ready = Signal(object)  # list[PersonInfo]
    progress = Signal(int, int, str)  # done, total, item
    job_started = Signal(str)
    job_finished = Signal(object)  # GalleryJobResult
    error = Signal(object)  # exception
    stopped = Signal()

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._settings = settings
        self._jobs: queue.Queue[tuple[str, tuple[Any, ...]]] = queue.Queue()
        self._stop = threading.Event()
        self.cancel_event = threading.Event()
        self._gallery: Any = None
        self._model_key: tuple[str, str, str] | None = None
        self.use_system_trash = True

    def submit(self, kind: str, *args: Any) -> None:
        self._jobs.put((kind, args))

    def request_stop(self) -> None:
        self._stop.set()
        self.cancel_event.set()

    @Slot()
    def run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    kind, args = self._jobs.get(timeout=0.1)
                except queue.Empty:
                    continue
                self._run_job(kind, args)
        finally:
            if self._gallery is not None:
                self._gallery.close()
            self.stopped.emit()

    def _ensure_gallery(self) -> Any:
        from core.detection import create_detector
        from core.embedding import create_embedder
        from core.gallery import Gallery

        s = self._settings
        root = gallery_root(s)
        key = (str(root), s.recognition.embedder, s.recognition.device)
        if self._gallery is not None and self._model_key == key:
            return self._gallery
        detector = create_detector(
            s.detection.detector, score_threshold=s.detection.score_threshold, device=s.recognition.device
        )
        embedder = create_embedder(s.recognition.embedder, device=s.recognition.device)
        if self._gallery is not None and self._model_key is not None and self._model_key[0] == str(root):
            self._gallery.set_embedder(embedder)
            self._gallery.set_detector(detector)
        else:
            if self._gallery is not None:
                self._gallery.close()
            self._gallery = Gallery(root, embedder, detector)
        self._model_key = key
        return self._gallery

    def _progress(self, done: int, total: int, item: str) -> None:
        self.progress.emit(done, total, item)

    def _run_job(self, kind: str, args: tuple[Any, ...]) -> None:
        self.cancel_event.clear()
        self.job_started.emit(kind)
        outcome: Any
        try:
            if kind == "settings":
                self._settings = args[0]
                gallery = self._ensure_gallery()
                value: Any = None
            else:
                gallery = self._ensure_gallery()
                value = self._do(gallery, kind, args)
            outcome = GalleryJobResult(kind, value, bool(getattr(value, "cancelled", False)))
        except Exception as exc:  # noqa: BLE001 - every failure reaches the user, the worker goes on
            log.warning("gallery job %s failed: %s", kind, exc)
            outcome = exc
        # The people first: whoever hears that a job ended sees the gallery as the job left it.
        try:
            if self._gallery is not None:
                self.people_ready.emit(self._gallery.people())
        except Exception as exc:  # noqa: BLE001
            self.error.emit(exc)
        if isinstance(outcome, Exception):
            self.error.emit(outcome)
        else:
            self.job_finished.emit(outcome)

    def _do(self, gallery: Any, kind: str, args: tuple[Any, ...]) -> Any:
        cancel = self.cancel_event
        if kind == "refresh":
            return None
        if kind == "sync":
            return gallery.sync(progress=self._progress, cancel=cancel)
        if kind == "add_person":
            return gallery.add_person(args[0])
        if kind == "rename":
            return gallery.rename_person(args[0], args[1])
        if kind == "delete":
            return move_to_trash(gallery, args[0], use_system_trash=self.use_system_trash)
        if kind == "add_photos":
            return gallery.add_photos(args[0], list(args[1]), progress=self._progress, cancel=cancel)
        if kind == "add_images":
            name, images = args
            results = []
            for done, image in enumerate(images, start=1):
                if cancel.is_set():
                    break
                results.append(gallery.add_image(name, image))
                self._progress(done, len(images), f"shot {done}")
            return results
        raise ValueError(f"unknown gallery job {kind!r}")


class GalleryController(QObject):
    """Owns the gallery worker thread; lives in the GUI thread. Connect only to these signals.

    ``busy`` is True from a job's start until its end; ``gallery_changed`` fires after every job that
    may have changed the people or their embeddings (the live pipeline then reloads).
    """

    people_ready = Signal(object)
    progress = Signal(int, int, str)
    job_started = Signal(str)
    job_finished = Signal(object)
    error = Signal(object)
    gallery_changed = Signal()
    busy_changed = Signal(bool)

    _started_in = Signal(str)
    _finished_in = Signal(object)
    _error_in = Signal(object)

    _CHANGING = frozenset({"sync", "add_person", "rename", "delete", "add_photos", "add_images", "settings"})

    def __init__(self, settings: Settings, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread = QThread()
        self._thread.setObjectName("gallery")
        self._worker = GalleryWorker(settings)
        self._worker.moveToThread(self._thread)
        self._worker.people_ready.connect(self.people_ready)
        self._worker.progress.connect(self.progress)
        self._worker.job_started.connect(self._started_in)
        self._worker.job_finished.connect(self._finished_in)
        self._worker.error.connect(self._error_in)
        self._started_in.connect(self._on_started)
        self._finished_in.connect(self._on_finished)
        self._error_in.connect(self._on_error)
        self._thread.started.connect(self._worker.run)
        self._pending = 0
        self._running = False
        self._settings = settings

    @property
    def worker(self) -> GalleryWorker:
        return self._worker

    @property
    def pending(self) -> int:
        """Jobs submitted and not finished yet."""
        return self._pending

    def start(self) -> None:
        if not self._running:
            self._running = True
            self._thread.start()

    def submit(self, kind: str, *args: Any) -> None:
        self.start()
        self._pending += 1
        if self._pending == 1:
            self.busy_changed.emit(True)
        self._worker.submit(kind, *args)

    def refresh(self) -> None:
        self.submit("refresh")

    def apply_settings(self, settings: Settings, *, sync: bool = True) -> None:
        """Use new settings; a new model or folder is re-embedded in the background when ``sync``.

        The main window passes ``sync=False`` while the live worker runs: that worker re-embeds with
        its own models then, and both would otherwise embed the same photos at the same time.
        """
        old = self._settings
        self._settings = settings
        if (old.gallery_dir, old.recognition.embedder, old.recognition.device) != (
            settings.gallery_dir,
            settings.recognition.embedder,
            settings.recognition.device,
        ):
            self.submit("settings", settings)
            if sync:
                self.submit("sync")

    def cancel(self) -> None:
        self._worker.cancel_event.set()

    def stop(self, timeout_ms: int = 20000) -> bool:
        if not self._running:
            return True
        self._worker.request_stop()
        self._thread.quit()
        ok = self._thread.wait(timeout_ms)
        self._running = not ok
        return ok

    @Slot(str)
    def _on_started(self, kind: str) -> None:
        self.job_started.emit(kind)

    def _done_one(self) -> None:
        self._pending = max(0, self._pending - 1)
        if self._pending == 0:
            self.busy_changed.emit(False)

    @Slot(object)
    def _on_finished(self, result: GalleryJobResult) -> None:
        self._done_one()
        self.job_finished.emit(result)
        if result.kind in self._CHANGING:
            self.gallery_changed.emit()

    @Slot(object)
    def _on_error(self, exc: Exception) -> None:
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


class EnrollCaptureWorker(QObject):
    """Reads the source, detects, and lets a :class:`core.enrollment.CaptureGuide` keep good shots."""

    frame_ready = Signal(object)  # EnrollFrame
    finished_shots = Signal(object)  # list[np.ndarray], the kept frames
    error = Signal(object)
    stopped = Signal()

    def __init__(self, settings: Settings, target_shots: int = 8) -> None:
        super().__init__()
        self._settings = settings
        self._target = target_shots
        self._stop = threading.Event()
        self._gui_free = threading.Event()
        self._gui_free.set()
        self.shots: list[np.ndarray] = []

    def request_stop(self) -> None:
        self._stop.set()

    def acknowledge(self) -> None:
        self._gui_free.set()

    @Slot()
    def run(self) -> None:
        source = None
        try:
            from core.capture import open_source
            from core.detection import create_detector
            from core.embedding import create_embedder
            from core.enrollment import CaptureGuide, GuideConfig

            s = self._settings
            detector = create_detector(s.detection.detector, score_threshold=s.detection.score_threshold)
            embedder = create_embedder(s.recognition.embedder, device=s.recognition.device)
            guide = CaptureGuide(embedder.embed, GuideConfig(target_shots=self._target))
            cam = s.camera
            source = open_source(cam.source, width=cam.width, height=cam.height, loop=True, realtime=True)
            for frame in source:
                if self._stop.is_set():
                    break
                detections = detector.detect(frame.image)
                verdict = guide.assess(frame.image, detections)
                if verdict.accepted:
                    self.shots = [shot.image for shot in guide.shots]
                if self._gui_free.is_set() or verdict.accepted:
                    self._gui_free.clear()
                    self.frame_ready.emit(
                        EnrollFrame(
                            frame.image,
                            tuple(tuple(float(v) for v in d.box[:4]) for d in detections),  # type: ignore[misc]
                            verdict,
                            guide.count,
                            self._target,
                        )
                    )
                if guide.done:
                    break
            self.finished_shots.emit(list(self.shots))
        except Exception as exc:  # noqa: BLE001 - shown in the dialog
            log.warning("camera enrolment failed: %s", exc)
            self.error.emit(exc)
        finally:
            if source is not None:
                source.close()
            self.stopped.emit()


class EnrollCaptureController(QObject):
    """Owns the enrolment capture thread; lives in the GUI thread."""

    frame_ready = Signal(object)
    finished_shots = Signal(object)
    error = Signal(object)
    stopped = Signal()

    _frame_in = Signal(object)

    def __init__(self, settings: Settings, target_shots: int = 8, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = QThread()
        self._thread.setObjectName("enrol-capture")
        self._worker = EnrollCaptureWorker(settings, target_shots)
        self._worker.moveToThread(self._thread)
        self._worker.frame_ready.connect(self._frame_in)
        self._frame_in.connect(self._on_frame)
        self._worker.finished_shots.connect(self.finished_shots)
        self._worker.error.connect(self.error)
        self._worker.stopped.connect(self.stopped)
        self._thread.started.connect(self._worker.run)

    def start(self) -> None:
        if self._thread is not None:
            self._thread.start()

    def shots(self) -> Sequence[np.ndarray]:
        return list(self._worker.shots)

    def stop(self, timeout_ms: int = 20000) -> bool:
        if self._thread is None:
            return True
        self._worker.request_stop()
        self._thread.quit()
        deadline = time.monotonic() + timeout_ms / 1000
        ok = self._thread.wait(max(1, int((deadline - time.monotonic()) * 1000)))
        if ok:
            self._thread = None
        return ok

    @Slot(object)
    def _on_frame(self, frame: EnrollFrame) -> None:
        try:
            self.frame_ready.emit(frame)
        finally:
            self._worker.acknowledge()
