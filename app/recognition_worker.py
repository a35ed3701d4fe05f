"""The live capture/inference thread, and the GUI-thread controller that owns it.

Threading model (:mod:`app.threads`): :class:`RecognitionWorker` lives in its own ``QThread`` and runs
one blocking loop that owns the frame source (read by a :class:`core.feed.LatestFrameReader`) and the
pipeline. :class:`RecognitionController` lives in the GUI thread, owns the thread, and relays every
worker signal signal-to-signal, so that the UI and the tests only ever connect to objects of the GUI
thread. The worker is stopped with a :class:`threading.Event`, then the thread is quit and waited for.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from app.threads import ThreadController, ThreadWorker
from core.capture import CaptureFactory, Frame, is_live_source
from core.detection import Detector
from core.embedding import Embedder
from core.engine import GalleryView, build_detector, build_embedder, gallery_root, open_gallery
from core.events import EventBus
from core.feed import FeedEnded, LatestFrameReader
from core.gallery import Gallery
from core.pipeline import Pipeline
from core.settings import Rebuild, Settings, rebuilds
from core.types import FrameResult, RecognitionEvent, StageTimings

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
    embedder_runtime: str  # what executes the embedder: "opencv-dnn" (deployed ONNX) or "pytorch"
    embedding_dim: int
    similarity_threshold: float
    threshold_source: str  # "model" (calibrated for the embedder) or "settings" (set by hand)
    gallery_dir: str
    gallery_people: int
    gallery_embeddings: int
    # Why the embedding cache on disk is not in use, or where a damaged one was moved ("" when fine).
    gallery_cache_notice: str = ""


def cache_notice(gallery: Gallery | GalleryView) -> str:
    """What the user must hear about the gallery's embedding cache ("" when fine).

    Asked when the live engine is ready and again whenever the gallery's owner publishes its people: the owner
    may open (and recover) the cache after the engine is ready.
    """
    moved = gallery.cache_recovered_from
    problem = gallery.cache_problem
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


def _people_in(gallery: Gallery | GalleryView) -> int:
    if isinstance(gallery, Gallery):
        return len(gallery.people())
    snap = gallery.snapshot()
    return len(snap.embedded_per_person) or len(set(snap.labels))


# What _next_frame returns when the loop must end (a video file or image folder came to its end).
_STOP = object()


@dataclass(slots=True)
class _LoopState:
    """What the live loop carries from one frame to the next (worker thread only)."""

    settings: Settings
    pipeline: Pipeline
    gallery: Gallery | GalleryView
    feed: LatestFrameReader | None = None
    feed_dropped: int = 0  # frames dropped by feeds already closed
    reported_dropped: int = 0  # drops already reported in a FrameResult
    running: bool = False  # the current feed has delivered a frame
    ever_ran: bool = False
    timings: deque[StageTimings] = field(default_factory=lambda: deque(maxlen=30))
    stamps: deque[float] = field(default_factory=lambda: deque(maxlen=60))
    last_stats: float = 0.0
    last_process: float = 0.0
    faces: int = 0
    # A file that is there but cannot be opened is not retried until the source changes: unlike a
    # camera (or a file not there yet), it will not start working by itself.
    given_up: bool = False


class RecognitionWorker(ThreadWorker):
    """The capture/inference loop. Lives in its own thread; talk to it only through its methods.

    Every public method except :meth:`run` is thread-safe and returns at once: it leaves a request
    that the loop picks up at the top of its next iteration.
    """

    frame_ready = Signal(object)  # FrameResult
    stats_ready = Signal(object)  # WorkerStats
    engine_ready = Signal(object)  # EngineInfo
    source_state = Signal(str, str)  # SourceState value, human-readable message
    gallery_progress = Signal(int, int, str)  # done, total, item: the gallery being (re-)embedded
    gallery_synced = Signal(object)  # core.gallery.SyncReport

    def __init__(
        self,
        settings: Settings,
        *,
        realtime: bool = True,
        event_bus: EventBus | None = None,
        capture_factory: CaptureFactory | None = None,
        gallery_view: GalleryView | None = None,
    ) -> None:
        super().__init__()
        self._capture_factory = capture_factory
        # The gallery worker's, when it owns the folder; without one this worker owns a gallery itself.
        self._gallery_view = gallery_view
        self._settings = settings
        self._realtime = realtime
        self._event_bus = event_bus
        self._gui_free = threading.Event()
        self._gui_free.set()
        self._lock = threading.Lock()
        self._pending_settings: Settings | None = None
        self._reload_gallery = threading.Event()
        self._pending_events: list[RecognitionEvent] = []
        self.processed = 0
        self.source_dropped = 0
        self.display_dropped = 0
        self.errors = 0
        self._shown_threshold = float("nan")

    # -- called from the GUI thread ------------------------------------------------------------
    def set_settings(self, settings: Settings) -> None:
        """Hand over a new snapshot; the loop swaps it in at the top of its next iteration."""
        with self._lock:
            self._pending_settings = settings

    def reload_gallery(self) -> None:
        """The gallery changed elsewhere: take it up again (and sync it, if this worker owns it)."""
        self._reload_gallery.set()

    def acknowledge(self) -> None:
        """The GUI has taken the last result: the next one may be sent (latest frame wins)."""
        self._gui_free.set()

    # -- the loop (worker thread) --------------------------------------------------------------
    def work(self) -> None:
        """Build the engine, then process the newest frame until asked to stop (or a file ends)."""
        settings = self._settings
        self.source_state.emit(SourceState.OPENING, f"Loading the models for {settings.camera.source}…")
        pipeline, gallery = self._build(settings)
        state = _LoopState(settings, pipeline, gallery)
        try:
            while not self.stop_event.is_set():
                self._take_settings(state)
                self._take_gallery_reload(state)
                frame = self._next_frame(state)
                if frame is _STOP:
                    break
                if frame is None or not self._wait_for_turn(state):
                    continue
                result = self._process(state, frame)
                if result is not None:
                    self._after_frame(state, result)
        finally:
            self._close(state)

    def _build(
        self, settings: Settings, detector: Detector | None = None, embedder: Embedder | None = None
    ) -> tuple[Pipeline, Gallery]:
        """Models, gallery and pipeline; a gallery this worker owns is synced with its own models here."""
        if detector is None:
            detector = build_detector(settings)
        if embedder is None:
            embedder = build_embedder(settings)
        gallery: Gallery | GalleryView
        if self._gallery_view is not None:
            gallery = self._gallery_view
        else:
            gallery = open_gallery(settings, detector, embedder)
        pipeline = Pipeline(
            settings, gallery, source=settings.camera.source, detector=detector, embedder=embedder
        )
        self._sync(pipeline)
        self._emit_engine(settings, pipeline, gallery)
        return pipeline, gallery

    def _sync(self, pipeline: Pipeline) -> None:
        report = pipeline.sync_gallery(self.gallery_progress.emit, self.stop_event)
        if report is not None:
            self.gallery_synced.emit(report)

    def _emit_engine(self, settings: Settings, pipeline: Pipeline, gallery: Gallery | GalleryView) -> None:
        det, emb = pipeline.detector, pipeline.embedder
        rec = settings.recognition
        self._shown_threshold = float(pipeline.matcher.threshold)
        self.engine_ready.emit(
            EngineInfo(
                detector=str(det.name),
                detector_device=str(det.device),
                embedder=str(emb.model_id),
                embedder_device=str(emb.device),
                embedder_runtime=str(emb.runtime),
                embedding_dim=int(emb.dim),
                similarity_threshold=self._shown_threshold,
                threshold_source="model"
                if rec.threshold_from_model and emb.suggested_threshold is not None
                else "settings",
                gallery_dir=str(gallery_root(settings)),
                gallery_people=_people_in(gallery),
                gallery_embeddings=int(gallery.snapshot().matrix.shape[0]),
                gallery_cache_notice=cache_notice(gallery),
            )
        )

    def _take_settings(self, state: _LoopState) -> None:
        """Swap in settings the GUI handed over: reopen the source or the gallery only if they changed."""
        with self._lock:
            new, self._pending_settings = self._pending_settings, None
        if new is None:
            return
        parts = rebuilds(state.settings, new)
        if Rebuild.SOURCE in parts:
            state.given_up = False
        if Rebuild.SOURCE in parts and state.feed is not None:
            self._close_feed(state)
            state.ever_ran = False
            state.pipeline.reset(new.camera.source)
        if Rebuild.GALLERY in parts and isinstance(state.gallery, Gallery):
            state.gallery.close()
            state.pipeline, state.gallery = self._build(new, state.pipeline.detector, state.pipeline.embedder)
        state.pipeline.apply_settings(new)
        state.settings = new

    def _take_gallery_reload(self, state: _LoopState) -> None:
        if self._reload_gallery.is_set():
            self._reload_gallery.clear()
            self._sync(state.pipeline)
            self._emit_engine(state.settings, state.pipeline, state.gallery)

    def _close_feed(self, state: _LoopState) -> None:
        if state.feed is not None:
            state.feed.stop()
            state.feed_dropped += state.feed.dropped
        state.feed, state.running = None, False

    def _next_frame(self, state: _LoopState) -> Frame | object | None:
        """The newest frame; None when there is none yet (or the source is retried); _STOP at the end."""
        if state.given_up:
            self.stop_event.wait(0.2)
            return None
        if state.feed is None:
            state.feed = LatestFrameReader(
                state.settings.camera,
                realtime=self._realtime,
                drop=self._realtime,
                capture_factory=self._capture_factory,
            ).start()
        feed = state.feed
        item = feed.get(timeout_s=0.2)
        if item is None:
            return None
        if isinstance(item, Frame):
            if not state.running:
                state.running = state.ever_ran = True
                self.source_state.emit(SourceState.RUNNING, feed.description)
            return item
        is_camera = feed.is_camera or is_live_source(state.settings.camera.source)
        was_running = state.running or state.ever_ran
        self._close_feed(state)
        if isinstance(item, FeedEnded) and not is_camera:
            self.source_state.emit(SourceState.ENDED, "End of the video.")
            return _STOP
        message = "The camera stopped delivering frames." if isinstance(item, FeedEnded) else str(item)
        lost = SourceState.LOST if was_running else SourceState.UNAVAILABLE
        if (
            lost == SourceState.UNAVAILABLE
            and not is_camera
            and Path(state.settings.camera.source).expanduser().is_file()
        ):
            state.given_up = True
            self.source_state.emit(lost, f"{message} Choose another file or a camera.")
            return None
        self.source_state.emit(lost, f"{message} Retrying every {RETRY_INTERVAL_S:.0f} s…")
        self.stop_event.wait(RETRY_INTERVAL_S)
        return None

    def _wait_for_turn(self, state: _LoopState) -> bool:
        """Keep under the maximum frame rate; False when a stop was asked for meanwhile."""
        # A ceiling on processing only: the feed keeps the newest frame while this waits.
        wait = state.last_process + 1.0 / state.settings.camera.max_fps - time.perf_counter()
        if wait > 0 and self.stop_event.wait(wait):
            return False
        state.last_process = time.perf_counter()
        return True

    def _process(self, state: _LoopState, frame: Frame) -> FrameResult | None:
        """Recognize one frame; a failure is counted and reported, and the loop goes on."""
        try:
            return state.pipeline.process(
                frame.image, frame.index, frame.timestamp, frame.decode_ms, stream_id=frame.stream_id
            )
        except Exception as exc:  # noqa: BLE001 - one bad frame must not end the loop
            self.errors += 1
            log.warning("frame %s failed: %s", frame.index, exc)
            self.error.emit(exc)
            return None

    def _after_frame(self, state: _LoopState, result: FrameResult) -> None:
        self._follow_model(state)
        feed = state.feed
        assert feed is not None
        self.processed += 1
        self.source_dropped = state.feed_dropped + feed.dropped
        state.timings.append(result.timings)
        state.stamps.append(time.perf_counter())
        state.faces = len(result.faces)
        self._publish(result.events)
        total_dropped = self.source_dropped + self.display_dropped
        result = dataclasses.replace(result, dropped_frames=total_dropped - state.reported_dropped)
        state.reported_dropped = total_dropped
        self._send(result)
        self._report_stats(state, feed.description)

    def _follow_model(self, state: _LoopState) -> None:
        """After a frame that built a new model or moved the threshold: sync and show what is in use."""
        pipeline = state.pipeline
        if pipeline.needs_gallery_sync and isinstance(state.gallery, Gallery):
            # A new embedder was built for this frame: its gallery embeddings are made here, in this
            # thread, since the model objects belong to it (cached ones cost nothing).
            self.source_state.emit(SourceState.OPENING, "Re-embedding the gallery for the new model…")
            self._sync(pipeline)
            self._emit_engine(state.settings, pipeline, state.gallery)
            if state.feed is not None:
                self.source_state.emit(SourceState.RUNNING, state.feed.description)
        elif pipeline.matcher.threshold != self._shown_threshold:
            self._emit_engine(state.settings, pipeline, state.gallery)

    def _publish(self, events: Sequence[RecognitionEvent]) -> None:
        if events and self._event_bus is not None:
            try:
                self._event_bus.publish_many(events)
            except Exception as exc:  # noqa: BLE001 - plugins never stop the video
                log.warning("event bus refused events: %s", exc)

    def _report_stats(self, state: _LoopState, source: str) -> None:
        now = time.perf_counter()
        if now - state.last_stats < STATS_INTERVAL_S:
            return
        state.last_stats = now
        stamps = state.stamps
        fps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        self.stats_ready.emit(
            WorkerStats(
                fps=fps,
                processed=self.processed,
                source_dropped=self.source_dropped,
                display_dropped=self.display_dropped,
                errors=self.errors,
                mean_timings=_mean_timings(state.timings),
                faces=state.faces,
                source=source,
            )
        )

    def _close(self, state: _LoopState) -> None:
        if state.feed is not None:
            state.feed.stop()
        self._publish(state.pipeline.flush_events())
        if isinstance(state.gallery, Gallery):
            state.gallery.close()

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


class RecognitionController(ThreadController):
    """Owns the recognition thread; lives in the GUI thread. Connect only to *these* signals.

    Signals are re-emitted on the GUI thread: ``frame_ready(FrameResult)``, ``stats_ready(WorkerStats)``,
    ``engine_ready(EngineInfo)``, ``source_state(str, str)``, ``error(Exception)``, ``running_changed(bool)``
    and ``stopped()`` (the thread has finished and been waited for).
    """

    frame_ready = Signal(object)
    stats_ready = Signal(object)
    engine_ready = Signal(object)
    source_state = Signal(str, str)
    gallery_progress = Signal(int, int, str)
    gallery_synced = Signal(object)

    # Frames come in through this private relay, so that the GUI acknowledges each one it took.
    _frame_in = Signal(object)

    thread_name = "recognition"

    def __init__(
        self,
        settings: Settings,
        parent: QObject | None = None,
        *,
        event_bus: EventBus | None = None,
        gallery_view: GalleryView | None = None,
    ) -> None:
        super().__init__(parent)
        self._settings = settings
        self._event_bus = event_bus
        # The gallery as its owner (the gallery worker) publishes it; None: the worker owns one itself.
        self._gallery_view = gallery_view
        self.realtime = True
        # Builds the cv2.VideoCapture-like object of a source (see core.capture.open_source); None is
        # OpenCV's own. Tests use it to stand in for a camera, which this machine does not have.
        self.capture_factory: CaptureFactory | None = None
        self.frames_received = 0
        self._frame_in.connect(self._on_frame)

    @property
    def settings(self) -> Settings:
        """The settings in use (or to start with)."""
        return self._settings

    def start(self, settings: Settings | None = None) -> None:
        """Start recognizing with ``settings`` (or the current ones); a running worker is stopped first."""
        if settings is not None:
            self._settings = settings
        if self.is_running():
            self.stop()
        worker = RecognitionWorker(
            self._settings,
            realtime=self.realtime,
            event_bus=self._event_bus,
            capture_factory=self.capture_factory,
            gallery_view=self._gallery_view,
        )
        self.frames_received = 0
        self._launch(
            worker,
            [
                (worker.frame_ready, self._frame_in),
                (worker.stats_ready, self.stats_ready),
                (worker.engine_ready, self.engine_ready),
                (worker.source_state, self.source_state),
                (worker.gallery_progress, self.gallery_progress),
                (worker.gallery_synced, self.gallery_synced),
            ],
        )

    def apply_settings(self, settings: Settings) -> None:
        """Make ``settings`` live: the worker swaps them in at its next frame."""
        self._settings = settings
        if isinstance(self._worker, RecognitionWorker):
            self._worker.set_settings(settings)

    def reload_gallery(self) -> None:
        """Have the running worker sync its gallery again (it was changed elsewhere)."""
        if isinstance(self._worker, RecognitionWorker):
            self._worker.reload_gallery()

    def worker_processed(self) -> int:
        """Frames the running worker has processed (0 when stopped)."""
        return self._worker.processed if isinstance(self._worker, RecognitionWorker) else 0

    @Slot(object)
    def _on_frame(self, result: FrameResult) -> None:
        worker = self._worker
        if not isinstance(worker, RecognitionWorker):
            return
        self.frames_received += 1
        try:
            self.frame_ready.emit(result)
        finally:
            worker.acknowledge()
