"""The live capture/inference thread, and the GUI-thread controller that owns it.

Threading model (see PLATFORM.md, "Qt threads: measured traps"): :class:`RecognitionWorker` lives in
its own ``QThread`` and runs one blocking loop that owns the frame source and the pipeline.
:class:`RecognitionController` lives in the GUI thread, owns the thread, and relays every worker
signal signal-to-signal, so that the UI and the tests only ever connect to objects of the GUI thread.
The worker is stopped with a :class:`threading.Event`, then the thread is quit and waited for.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QThread, Signal, Slot

from core.engine import build_detector, build_embedder, gallery_root, open_gallery
from core.settings import Rebuild, Settings, rebuilds
from core.types import FrameResult, StageTimings

__all__ = ["EngineInfo", "RecognitionController", "RecognitionWorker", "SourceState", "WorkerStats"]

log = logging.getLogger(__name__)

# Seconds between two attempts to reopen a lost or missing source.
RETRY_INTERVAL_S = 2.0
# Seconds between two statistics reports; often enough for a status bar, rare enough to cost nothing.
STATS_INTERVAL_S = 0.5


class SourceState:
    """What the source is doing, as the ``state`` argument of ``source_state``."""

    OPENING = "opening"
    RUNNING = "running"
    LOST = "lost"  # it was running and stopped delivering frames; we retry
    UNAVAILABLE = "unavailable"  # it could not be opened; we retry
    ENDED = "ended"  # a video file or image folder came to its end


@dataclass(frozen=True, slots=True)
class WorkerStats:
    """Figures the worker reports every :data:`STATS_INTERVAL_S` seconds.

    Attributes:
        fps: frames processed per second over the last couple of seconds.
        processed: frames processed since the worker started.
        source_dropped: frames the source skipped to keep up (latest frame wins).
        display_dropped: results not shown because the GUI had not drawn the previous one yet.
        errors: frames whose processing raised (each one is reported, the loop goes on).
        mean_timings: per-stage milliseconds averaged over the recent frames.
        faces: faces in the latest frame.
        source: the source description.
    """

    fps: float
    processed: int
    source_dropped: int
    display_dropped: int
    errors: int
    mean_timings: StageTimings
    faces: int
    source: str


@dataclass(frozen=True, slots=True)
class EngineInfo:
    """Which models the worker built and where they really run (for the diagnostics view)."""

    detector: str
    detector_device: str
    embedder: str
    embedder_device: str
    embedding_dim: int
    similarity_threshold: float
    threshold_source: str  # "model" (calibrated for the embedder) or "settings" (set by hand)
    gallery_dir: str
    gallery_people: int
    gallery_embeddings: int
    # Why the embedding cache on disk is not in use, or where a damaged one was moved ("" when fine).
    gallery_cache_notice: str = ""


def _cache_notice(gallery: Any) -> str:
    moved = getattr(gallery, "cache_recovered_from", None)
    problem = getattr(gallery, "cache_problem", None)
    parts = [f"The embedding cache was damaged: it was moved to {moved} and rebuilt."] if moved else []
    if problem:
        parts.append(f"{problem[0].upper()}{problem[1:]}.")
    return " ".join(parts)


def _mean_timings(window: deque[StageTimings]) -> StageTimings:
    if not window:
        return StageTimings()
    n = float(len(window))
    return StageTimings(
        decode_ms=sum(t.decode_ms for t in window) / n,
        detect_ms=sum(t.detect_ms for t in window) / n,
        align_ms=sum(t.align_ms for t in window) / n,
        embed_ms=sum(t.embed_ms for t in window) / n,
        match_ms=sum(t.match_ms for t in window) / n,
        track_ms=sum(t.track_ms for t in window) / n,
    )


def _is_camera_spec(spec: str) -> bool:
    return spec.strip().isdigit() or "://" in spec


_END = object()


class FrameFeed:
    """Reads a frame source on its own thread and keeps only the newest frame (latest frame wins).

    The source is opened, iterated and closed on the feed's thread (sources are single-threaded).
    :meth:`get` returns the newest :class:`core.capture.Frame`, an exception (the source could not be
    opened or was lost), :data:`_END` (a file or folder ended) or None (nothing new yet). A frame the
    consumer had no time to take is replaced by the next one and counted in :attr:`dropped`. With
    ``drop=False`` the reader waits for the consumer instead (every frame is processed: benchmarks).
    """

    def __init__(
        self, settings: Settings, *, realtime: bool, drop: bool, capture_factory: Any = None
    ) -> None:
        self._settings = settings
        self._capture_factory = capture_factory
        self._realtime = realtime
        self._drop = drop
        self._cond = threading.Condition()
        self._item: Any = None
        self._stop = threading.Event()
        self.dropped = 0
        self.description = settings.camera.source
        self.is_camera = False
        self._thread = threading.Thread(target=self._run, name="frame-feed", daemon=True)

    def start(self) -> FrameFeed:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("the frame reader did not stop within %.0f s", timeout_s)

    def get(self, timeout_s: float) -> Any:
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout_s)
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def _put(self, item: Any) -> None:
        with self._cond:
            if self._item is not None and not self._drop:
                while self._item is not None and not self._stop.is_set():
                    self._cond.wait(0.1)
            if (
                self._item is not None
                and not isinstance(self._item, BaseException)
                and self._item is not _END
            ):
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def _run(self) -> None:
        from core.capture import open_source

        cam = self._settings.camera
        try:
            source = open_source(
                cam.source,
                width=cam.width,
                height=cam.height,
                loop=cam.loop_video,
                realtime=self._realtime,
                capture_factory=self._capture_factory,
            )
        except Exception as exc:  # noqa: BLE001 - handed to the worker, which reports and retries
            self._put(exc)
            return
        self.description = source.description
        self.is_camera = bool(getattr(source, "is_camera", False))
        try:
            while not self._stop.is_set():
                try:
                    frame = source.read()
                except Exception as exc:  # noqa: BLE001 - a lost camera: the worker reports and retries
                    self._put(exc)
                    return
                if frame is None:
                    self._put(_END)
                    return
                self._put(frame)
        finally:
            source.close()


class RecognitionWorker(QObject):
    """The capture/inference loop. Lives in its own thread; talk to it only through its methods.

    Every public method except :meth:`run` is thread-safe and returns at once: it leaves a request
    that the loop picks up at the top of its next iteration.
    """

    frame_ready = Signal(object)  # FrameResult
    stats_ready = Signal(object)  # WorkerStats
    engine_ready = Signal(object)  # EngineInfo
    source_state = Signal(str, str)  # SourceState value, human-readable message
    error = Signal(object)  # an exception object, with its traceback
    gallery_progress = Signal(int, int, str)  # done, total, item: the gallery being (re-)embedded
    gallery_synced = Signal(object)  # core.gallery.SyncReport
    stopped = Signal()

    def __init__(
        self, settings: Settings, *, realtime: bool = True, event_bus: Any = None, capture_factory: Any = None
    ) -> None:
        super().__init__()
        self._capture_factory = capture_factory
        self._settings = settings
        self._realtime = realtime
        self._event_bus = event_bus
        self._stop = threading.Event()
        self._gui_free = threading.Event()
        self._gui_free.set()
        self._lock = threading.Lock()
        self._pending_settings: Settings | None = None
        self._reload_gallery = threading.Event()
        self._reset = threading.Event()
        self._pending_events: list[Any] = []
        self.processed = 0
        self.source_dropped = 0
        self.display_dropped = 0
        self.errors = 0
        self._shown_threshold = float("nan")

    # -- called from the GUI thread ------------------------------------------------------------
    def request_stop(self) -> None:
        self._stop.set()

    def set_settings(self, settings: Settings) -> None:
        """Hand over a new snapshot; the loop swaps it in at the top of its next iteration."""
        with self._lock:
            self._pending_settings = settings

    def reload_gallery(self) -> None:
        self._reload_gallery.set()

    def acknowledge(self) -> None:
        """The GUI has taken the last result: the next one may be sent (latest frame wins)."""
        self._gui_free.set()

    # -- the loop (worker thread) --------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 - reported to the user, never swallowed
            log.exception("recognition worker failed")
            self.error.emit(exc)
        finally:
            self.stopped.emit()

    def _build(self, settings: Settings, detector: Any = None, embedder: Any = None) -> tuple[Any, Any]:
        """Models, gallery and pipeline; the gallery is synced with the pipeline's own models here."""
        from core.pipeline import Pipeline

        if detector is None:
            detector = build_detector(settings)
        if embedder is None:
            embedder = build_embedder(settings)
        gallery = open_gallery(settings, detector, embedder)
        pipeline = Pipeline(
            settings, gallery, source=settings.camera.source, detector=detector, embedder=embedder
        )
        self._sync(pipeline)
        self._emit_engine(settings, pipeline, gallery)
        return pipeline, gallery

    def _sync(self, pipeline: Any) -> None:
        def progress(done: int, total: int, item: str) -> None:
            self.gallery_progress.emit(done, total, item)

        report = pipeline.sync_gallery(progress, self._stop)
        if report is not None:
            self.gallery_synced.emit(report)

    def _emit_engine(self, settings: Settings, pipeline: Any, gallery: Any) -> None:
        det, emb = pipeline.detector, pipeline.embedder
        people = gallery.people()
        rec = settings.recognition
        suggested = getattr(emb, "suggested_threshold", None)
        self._shown_threshold = float(pipeline.matcher.threshold)
        self.engine_ready.emit(
            EngineInfo(
                detector=str(getattr(det, "name", settings.detection.detector)),
                detector_device=str(getattr(det, "device", "cpu")),
                embedder=str(getattr(emb, "model_id", settings.recognition.embedder)),
                embedder_device=str(getattr(emb, "device", "cpu")),
                embedding_dim=int(getattr(emb, "dim", 0)),
                similarity_threshold=self._shown_threshold,
                threshold_source="model"
                if rec.threshold_from_model and suggested is not None
                else "settings",
                gallery_dir=str(gallery_root(settings)),
                gallery_people=len(people),
                gallery_embeddings=int(gallery.snapshot().matrix.shape[0]),
                gallery_cache_notice=_cache_notice(gallery),
            )
        )

    def _loop(self) -> None:
        settings = self._settings
        self.source_state.emit(SourceState.OPENING, f"Loading the models for {settings.camera.source}…")
        pipeline, gallery = self._build(settings)
        feed: FrameFeed | None = None
        feed_dropped = 0  # frames dropped by feeds already closed
        reported_dropped = 0  # drops already reported in a FrameResult
        running = False  # the current feed has delivered a frame
        ever_ran = False
        timings: deque[StageTimings] = deque(maxlen=30)
        stamps: deque[float] = deque(maxlen=60)
        last_stats = 0.0
        last_process = 0.0
        faces = 0
        # A file that is there but cannot be opened is not retried until the source changes: unlike a
        # camera (or a file not there yet), it will not start working by itself.
        given_up = False
        try:
            while not self._stop.is_set():
                with self._lock:
                    new, self._pending_settings = self._pending_settings, None
                if new is not None:
                    parts = rebuilds(settings, new)
                    if Rebuild.SOURCE in parts and feed is not None:
                        feed.stop()
                        feed_dropped += feed.dropped
                        feed, running, ever_ran = None, False, False
                        pipeline.reset(new.camera.source)
                    if Rebuild.SOURCE in parts:
                        given_up = False
                    if Rebuild.GALLERY in parts:
                        gallery.close()
                        pipeline, gallery = self._build(new, pipeline.detector, pipeline.embedder)
                    pipeline.apply_settings(new)
                    settings = new
                if self._reload_gallery.is_set():
                    self._reload_gallery.clear()
                    self._sync(pipeline)
                    self._emit_engine(settings, pipeline, gallery)

                if given_up:
                    self._stop.wait(0.2)
                    continue
                if feed is None:
                    feed = FrameFeed(
                        settings,
                        realtime=self._realtime,
                        drop=self._realtime,
                        capture_factory=self._capture_factory,
                    ).start()
                item = feed.get(timeout_s=0.2)
                if item is None:
                    continue
                if item is _END or isinstance(item, BaseException):
                    feed.stop()
                    feed_dropped += feed.dropped
                    is_camera = feed.is_camera or _is_camera_spec(settings.camera.source)
                    feed, was_running = None, running
                    running = False
                    if item is _END and not is_camera:
                        self.source_state.emit(SourceState.ENDED, "End of the video.")
                        break
                    if item is _END:
                        message = "The camera stopped delivering frames."
                    else:
                        message = str(item)
                    state = SourceState.LOST if (was_running or ever_ran) else SourceState.UNAVAILABLE
                    if (
                        state == SourceState.UNAVAILABLE
                        and not is_camera
                        and Path(settings.camera.source).expanduser().is_file()
                    ):
                        given_up = True
                        self.source_state.emit(state, f"{message} Choose another file or a camera.")
                        continue
                    self.source_state.emit(state, f"{message} Retrying every {RETRY_INTERVAL_S:.0f} s…")
                    self._stop.wait(RETRY_INTERVAL_S)
                    continue
                frame = item
                if not running:
                    running = ever_ran = True
                    self.source_state.emit(SourceState.RUNNING, feed.description)

                # The maximum frame rate is a ceiling on processing; the feed keeps only the newest frame.
                min_period = 1.0 / settings.camera.max_fps
                wait = last_process + min_period - time.perf_counter()
                if wait > 0 and self._stop.wait(wait):
                    break
                last_process = time.perf_counter()

                try:
                    result = pipeline.process(frame.image, frame.index, frame.timestamp, frame.decode_ms)
                except Exception as exc:  # noqa: BLE001 - one bad frame must not end the loop
                    self.errors += 1
                    log.warning("frame %s failed: %s", frame.index, exc)
                    self.error.emit(exc)
                    continue
                if pipeline.needs_gallery_sync:
                    # A new embedder was built for this frame: its gallery embeddings are made here,
                    # in this thread, since the model objects belong to it (cached ones cost nothing).
                    self.source_state.emit(SourceState.OPENING, "Re-embedding the gallery for the new model…")
                    self._sync(pipeline)
                    self._emit_engine(settings, pipeline, gallery)
                    self.source_state.emit(SourceState.RUNNING, feed.description)
                elif pipeline.matcher.threshold != self._shown_threshold:
                    # New settings (or a new model) moved the threshold: show the one in use.
                    self._emit_engine(settings, pipeline, gallery)
                self.processed += 1
                self.source_dropped = feed_dropped + feed.dropped
                timings.append(result.timings)
                stamps.append(time.perf_counter())
                faces = len(result.faces)
                if result.events and self._event_bus is not None:
                    try:
                        self._event_bus.publish_many(result.events)
                    except Exception as exc:  # noqa: BLE001 - plugins never stop the video
                        log.warning("event bus refused events: %s", exc)
                total_dropped = self.source_dropped + self.display_dropped
                result = dataclasses.replace(result, dropped_frames=total_dropped - reported_dropped)
                reported_dropped = total_dropped
                self._send(result)

                now = time.perf_counter()
                if now - last_stats >= STATS_INTERVAL_S:
                    last_stats = now
                    fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
                    self.stats_ready.emit(
                        WorkerStats(
                            fps=fps,
                            processed=self.processed,
                            source_dropped=self.source_dropped,
                            display_dropped=self.display_dropped,
                            errors=self.errors,
                            mean_timings=_mean_timings(timings),
                            faces=faces,
                            source=feed.description,
                        )
                    )
        finally:
            if feed is not None:
                feed.stop()
            if self._event_bus is not None:
                try:
                    self._event_bus.publish_many(pipeline.flush_events())
                except Exception as exc:  # noqa: BLE001
                    log.warning("final events not published: %s", exc)
            gallery.close()

    def _send(self, result: FrameResult) -> None:
        """Emit the result if the GUI drew the previous one; otherwise drop it, keeping its events."""
        if result.events:
            self._pending_events.extend(result.events)
        if not self._gui_free.is_set():
            self.display_dropped += 1
            return
        self._gui_free.clear()
        if self._pending_events:
            result = dataclasses.replace(result, events=tuple(self._pending_events))
            self._pending_events = []
        self.frame_ready.emit(result)


class RecognitionController(QObject):
    """Owns the recognition thread; lives in the GUI thread. Connect only to *these* signals.

    Signals are re-emitted on the GUI thread: ``frame_ready(FrameResult)``, ``stats_ready(WorkerStats)``,
    ``engine_ready(EngineInfo)``, ``source_state(str, str)``, ``error(Exception)``, ``running_changed(bool)``
    and ``stopped()`` (the thread has finished and been waited for).
    """

    frame_ready = Signal(object)
    stats_ready = Signal(object)
    engine_ready = Signal(object)
    source_state = Signal(str, str)
    error = Signal(object)
    gallery_progress = Signal(int, int, str)
    gallery_synced = Signal(object)
    running_changed = Signal(bool)
    stopped = Signal()

    # Private relays: the worker's signals connect to these (signal to signal, queued across
    # threads), and only GUI-thread code is connected to them.
    _frame_in = Signal(object)
    _stopped_in = Signal()

    def __init__(self, settings: Settings, parent: QObject | None = None, *, event_bus: Any = None) -> None:
        super().__init__(parent)
        self._settings = settings
        self._event_bus = event_bus
        self._thread: QThread | None = None
        self._worker: RecognitionWorker | None = None
        self.realtime = True
        # Builds the cv2.VideoCapture-like object of a source (see core.capture.open_source); None is
        # OpenCV's own. Tests use it to stand in for a camera, which this machine does not have.
        self.capture_factory: Any = None
        self.frames_received = 0
        self._frame_in.connect(self._on_frame)
        self._stopped_in.connect(self._on_stopped)

    @property
    def settings(self) -> Settings:
        return self._settings

    def is_running(self) -> bool:
        return self._thread is not None

    def start(self, settings: Settings | None = None) -> None:
        """Start recognising with ``settings`` (or the current ones); a running worker is stopped first."""
        if settings is not None:
            self._settings = settings
        if self._thread is not None:
            self.stop()
        thread = QThread()
        thread.setObjectName("recognition")
        worker = RecognitionWorker(
            self._settings,
            realtime=self.realtime,
            event_bus=self._event_bus,
            capture_factory=self.capture_factory,
        )
        worker.moveToThread(thread)
        worker.frame_ready.connect(self._frame_in)
        worker.stats_ready.connect(self.stats_ready)
        worker.engine_ready.connect(self.engine_ready)
        worker.source_state.connect(self.source_state)
        worker.error.connect(self.error)
        worker.gallery_progress.connect(self.gallery_progress)
        worker.gallery_synced.connect(self.gallery_synced)
        worker.stopped.connect(self._stopped_in)
        thread.started.connect(worker.run)
        self._thread, self._worker = thread, worker
        self.frames_received = 0
        thread.start()
        self.running_changed.emit(True)

    def stop(self, timeout_ms: int = 20000) -> bool:
        """Stop the worker, then wait for its thread. Returns False if it did not end in time."""
        thread, worker = self._thread, self._worker
        if thread is None or worker is None:
            return True
        worker.request_stop()
        thread.quit()
        ok = thread.wait(timeout_ms)
        if not ok:
            log.error("the recognition thread did not stop within %d ms", timeout_ms)
            return False
        self._thread, self._worker = None, None
        # Results and reports the worker queued before it stopped are stale now: drop them, so that
        # nothing arrives after stop() (nor from an old worker after a restart).
        QCoreApplication.removePostedEvents(self, QEvent.Type.MetaCall)
        # Keep Python references until the thread has ended: a QThread collected while running aborts.
        thread.deleteLater()
        worker.deleteLater()
        self.running_changed.emit(False)
        self.stopped.emit()
        return True

    def apply_settings(self, settings: Settings) -> None:
        """Make ``settings`` live: the worker swaps them in at its next frame."""
        self._settings = settings
        if self._worker is not None:
            self._worker.set_settings(settings)

    def reload_gallery(self) -> None:
        if self._worker is not None:
            self._worker.reload_gallery()

    def worker_processed(self) -> int:
        """Frames the running worker has processed (0 when stopped)."""
        return self._worker.processed if self._worker is not None else 0

    @Slot(object)
    def _on_frame(self, result: FrameResult) -> None:
        worker = self._worker
        if worker is None:
            return
        self.frames_received += 1
        try:
            self.frame_ready.emit(result)
        finally:
            if worker is not None:
                worker.acknowledge()

    @Slot()
    def _on_stopped(self) -> None:
        # The loop ended by itself (end of a video, or a fatal error): finish the thread here.
        worker = self._worker
        if worker is not None and self._thread is not None:
            self.stop()
