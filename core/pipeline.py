"""One frame in, one :class:`~core.types.FrameResult` out: detect, gate, align, embed, match, track, events."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

import cv2
import numpy as np

from core.alignment import align_face
from core.detection import Detector
from core.embedding import Embedder
from core.engine import GalleryView, build_detector, build_embedder, configure_detector
from core.events import EventEmitter
from core.gallery import Gallery, GallerySnapshot, ProgressCallback, SyncReport
from core.matching import Matcher
from core.quality import face_sharpness
from core.settings import Rebuild, Settings, effective_threshold, rebuilds
from core.tracking import Assignment, Tracker
from core.types import Detection, Face, FrameResult, Match, RecognitionEvent, StageTimings
from core.unknowns import UnknownPeople

__all__ = ["Pipeline", "face_sharpness"]

log = logging.getLogger(__name__)

# Shot-change detection: mean absolute difference of consecutive frames shrunk to a tiny grey image.
# Within a shot it stays below ~14 grey levels on the demo clip (people moving, camera panning); at its
# three cuts it is 28-30. At a cut every track ends, so no name is carried onto whoever now stands where
# the last person stood.
_CUT_SIZE = (64, 36)
_CUT_DIFF = 20.0


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


class Pipeline:
    """The recognition engine for one stream of frames.

    Used by one thread (the capture/inference worker), which calls :meth:`process` per frame.
    :meth:`apply_settings` may be called from any other thread: the new settings are an immutable
    snapshot taken over at the top of the next :meth:`process`, where only the stages whose settings
    changed are rebuilt (thresholds are live; a new detector, embedder or device rebuilds that model).

    Args:
        settings: the settings to start with.
        gallery: the known people: a gallery, or a view of one another thread owns; None means
            everyone is Unknown. Its embeddings are picked up whenever it publishes new ones.
        source: what is watched, copied into events.
        detector: a ready detector to use instead of building one from the settings.
        embedder: a ready embedder to use instead of building one from the settings.
        embed_every_frame: embed every face of every frame (no re-embed skipping; the baseline that
            ``ghostface bench`` compares tracking with).
    """

    def __init__(
        self,
        settings: Settings,
        gallery: Gallery | GalleryView | None = None,
        *,
        source: str = "",
        detector: Detector | None = None,
        embedder: Embedder | None = None,
        embed_every_frame: bool = False,
    ) -> None:
        self._settings = settings
        self._requested = settings
        self._pending: Settings | None = None
        self._pending_lock = threading.Lock()
        self._detector = detector if detector is not None else build_detector(settings)
        self._embedder = embedder if embedder is not None else build_embedder(settings)
        rec = settings.recognition
        self._matcher = Matcher(
            effective_threshold(rec, self._embedder.suggested_threshold), rec.margin, rec.use_mean_embedding
        )
        # Unknown people are numbered with the matcher's own "same person" line, kept up to date below.
        self._unknowns = UnknownPeople(self._matcher.threshold)
        self._tracker = Tracker(settings.tracking, self._unknowns)
        self._source = source
        self._emitter = EventEmitter(settings.events, source)
        self._gallery = gallery
        self._gallery_snapshot: GallerySnapshot | None = None  # the one the matcher holds
        # Set when the matcher's parameters or gallery changed: the live tracks are decided again
        # from their stored embeddings at the top of the next frame, so a slider shows at once.
        self._redecide = False
        self.embed_every_frame = embed_every_frame
        self._last_frame = (0, 0.0)
        self._stream_id: int | None = None  # the stream of the last frame processed
        self._previous_small: np.ndarray | None = None

    # ------------------------------------------------------------------------------------ properties

    @property
    def settings(self) -> Settings:
        """The latest settings asked for (applied at the next frame at the latest)."""
        return self._requested

    @property
    def detector(self) -> Detector:
        """The detector in use (replaced when the settings name another one or another device)."""
        return self._detector

    @property
    def embedder(self) -> Embedder:
        """The embedder in use (replaced when the settings name another one or another device)."""
        return self._embedder

    @property
    def matcher(self) -> Matcher:
        """The matcher: threshold, margin and the gallery's embeddings."""
        return self._matcher

    @property
    def unknowns(self) -> UnknownPeople:
        """The unknown people of this source, numbered across tracks, shot changes and loops."""
        return self._unknowns

    @property
    def tracker(self) -> Tracker:
        """The tracker: the live tracks and their identity votes."""
        return self._tracker

    @property
    def gallery(self) -> Gallery | GalleryView | None:
        """The known people (None: everyone is Unknown)."""
        return self._gallery

    def set_gallery(self, gallery: Gallery | GalleryView | None) -> None:
        """Use another gallery (or none) from the next frame on; safe from any thread."""
        self._gallery = gallery
        self._gallery_snapshot = None

    @property
    def needs_gallery_sync(self) -> bool:
        """True when the gallery's embeddings come from another model than the pipeline's embedder.

        Until it is synced with the pipeline's model every face is Unknown. Run :meth:`sync_gallery`
        (or ``gallery.set_embedder`` + ``gallery.sync`` with a separate embedder in a worker).
        """
        return self._gallery is not None and self._gallery.snapshot().model_id != self._embedder.model_id

    # ----------------------------------------------------------------------------------- settings

    def apply_settings(self, settings: Settings) -> None:
        """Ask for new settings; safe from any thread. They take effect at the next :meth:`process`."""
        with self._pending_lock:
            self._pending = settings
            self._requested = settings

    def _take_pending(self) -> None:
        with self._pending_lock:
            new, self._pending = self._pending, None
        if new is None or new == self._settings:
            return
        try:
            self._apply(new)
        except Exception:
            # Nothing of the new settings was applied: say so through ``settings``, unless newer
            # settings are already waiting.
            with self._pending_lock:
                if self._pending is None:
                    self._requested = self._settings
            raise

    def _apply(self, new: Settings) -> None:
        parts = rebuilds(self._settings, new)
        detector = build_detector(new) if Rebuild.DETECTOR in parts else self._detector
        embedder = build_embedder(new) if Rebuild.EMBEDDER in parts else self._embedder
        # Every model was built: only now change anything, so a failed rebuild leaves all as it was.
        if detector is not self._detector:
            log.info("detector rebuilt: %r", detector)
            self._detector = detector
        else:
            configure_detector(detector, new)
        if embedder is not self._embedder:
            log.info("embedder rebuilt: %r (the gallery must be synced with it)", embedder)
            self._embedder = embedder
            self._gallery_snapshot = None
            self._matcher.set_gallery(np.zeros((0, embedder.dim), np.float32), [])
            # The tracks' names and stored embeddings come from the old model: start them afresh.
            self._tracker.reset()
            self._unknowns.clear()
        rec = new.recognition
        threshold = effective_threshold(rec, embedder.suggested_threshold)
        if (threshold, rec.margin, rec.use_mean_embedding) != (
            self._matcher.threshold,
            self._matcher.margin,
            self._matcher.use_mean,
        ):
            self._redecide = True
        self._matcher.threshold = threshold
        self._unknowns.threshold = threshold
        self._matcher.margin = rec.margin
        self._matcher.use_mean = rec.use_mean_embedding
        self._tracker.settings = new.tracking
        self._emitter.apply_settings(new.events)
        self._settings = new

    # --------------------------------------------------------------------------------------- stream

    def reset(self, source: str | None = None) -> None:
        """Start a new source: tracks, unknown people and event state are forgotten."""
        if source is not None:
            self._source = source
        self._tracker.reset()
        self._unknowns.clear()
        self._previous_small = None
        self._stream_id = None
        self._emitter = EventEmitter(self._settings.events, self._source)

    def _end_stream(self) -> list[RecognitionEvent]:
        """The stream ended (a looping video starts its next pass): ``left`` for everyone, tracks reset.

        The event state starts afresh too (visits, cooldowns), as for a new source; the tracker's ids go
        on increasing, so a track of the new stream never shares an id with one of the old.
        """
        events = self.flush_events()
        self._tracker.reset()
        self._previous_small = None
        self._emitter.reset()
        return events

    def _prepare(
        self, stream_id: int, frame_index: int, timestamp: float
    ) -> tuple[list[RecognitionEvent], float]:
        """Before a frame: new settings, the end of the previous stream, the gallery, redecided tracks.

        A frame of a new stream (``stream_id`` changed, or stream time went back) first ends the old one:
        everyone in view gets a ``left`` (the result's first events), tracks and visits restart.

        Returns:
            the events that ended the previous stream, and the milliseconds spent deciding tracks again.
        """
        self._take_pending()
        ended: list[RecognitionEvent] = []
        if self._stream_id is not None and (stream_id != self._stream_id or timestamp < self._last_frame[1]):
            log.debug(
                "stream %s ended, stream %s starts at frame %d", self._stream_id, stream_id, frame_index
            )
            ended = self._end_stream()
        self._stream_id = stream_id
        self._refresh_gallery()
        return ended, self._redecide_tracks()

    def flush_events(self) -> list[RecognitionEvent]:
        """End of the stream: the events still due (a ``left`` for everyone in view)."""
        frame_index, stream_time = self._last_frame
        return self._emitter.flush(frame_index, stream_time)

    def sync_gallery(
        self, progress: ProgressCallback | None = None, cancel: threading.Event | None = None
    ) -> SyncReport | None:
        """Sync the gallery with the pipeline's own detector and embedder.

        Call it from the pipeline's thread (or while no frame is processed): the models are shared.
        A gallery seen through a :class:`~core.engine.GalleryView` is synced by its owner, not here.
        """
        if not isinstance(self._gallery, Gallery):
            return None
        self._gallery.set_detector(self._detector)
        if self._gallery.embedder is not self._embedder:
            self._gallery.set_embedder(self._embedder)
        return self._gallery.sync(progress, cancel)

    def _refresh_gallery(self) -> None:
        gallery = self._gallery
        if gallery is None:
            if self._gallery_snapshot is None and self._matcher.size:
                self._matcher.set_gallery(np.zeros((0, self._embedder.dim), np.float32), [])
                self._redecide = True
            return
        # Snapshots are immutable and replaced whole on every change, so identity says "changed",
        # also when a view's owner switched to another folder whose versions count from the start.
        snap = gallery.snapshot()
        if snap is self._gallery_snapshot:
            return
        self._gallery_snapshot = snap
        self._redecide = True
        if snap.model_id != self._embedder.model_id or snap.matrix.shape[0] == 0:
            if snap.model_id and snap.model_id != self._embedder.model_id:
                log.warning(
                    "the gallery was embedded with %s, not %s: faces stay Unknown until it is synced",
                    snap.model_id,
                    self._embedder.model_id,
                )
            self._matcher.set_gallery(np.zeros((0, self._embedder.dim), np.float32), [])
        else:
            self._matcher.set_gallery(snap.matrix, snap.labels)

    # -------------------------------------------------------------------------------------- process

    def _gate(self, detections: Sequence[Detection]) -> list[Detection]:
        det = self._settings.detection
        return [
            d
            for d in detections
            if min(d.width, d.height) >= det.min_face_px and d.score >= det.score_threshold
        ]

    def _shot_changed(self, image_bgr: np.ndarray) -> bool:
        grey = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY) if image_bgr.ndim == 3 else image_bgr
        small = cv2.resize(grey, _CUT_SIZE, interpolation=cv2.INTER_AREA).astype(np.int16)
        previous, self._previous_small = self._previous_small, small
        return previous is not None and float(np.abs(small - previous).mean()) > _CUT_DIFF

    def _redecide_tracks(self) -> float:
        """Decide every live track again if the matcher changed; returns the milliseconds it took."""
        if not self._redecide:
            return 0.0
        self._redecide = False
        t = time.perf_counter()
        count = self._tracker.redecide(self._matcher.match)
        log.debug("matcher changed: %d tracks decided again from their stored embeddings", count)
        return _ms(t)

    def _detect(self, image_bgr: np.ndarray) -> tuple[list[Detection], float]:
        """The faces of the frame that pass the size and score gates, and the milliseconds it took."""
        t = time.perf_counter()
        detections = self._gate(self._detector.detect(image_bgr))
        return detections, _ms(t)

    def _assign_tracks(
        self, image_bgr: np.ndarray, detections: Sequence[Detection], frame_index: int
    ) -> tuple[Assignment, float]:
        """Put the faces on tracks (all tracks end first at a shot change); says which to embed.

        Returns:
            the assignment, and the milliseconds it took.
        """
        t = time.perf_counter()
        if self._shot_changed(image_bgr):
            log.debug("shot change at frame %d: tracks restart", frame_index)
            self._tracker.reset()
        sharpness = [face_sharpness(image_bgr, d.box) for d in detections]
        assignment = self._tracker.assign(
            detections, frame_index, sharpness, embed_all=self.embed_every_frame
        )
        return assignment, _ms(t)

    def _embed_and_match(
        self, image_bgr: np.ndarray, detections: Sequence[Detection], to_embed: Sequence[int]
    ) -> tuple[dict[int, Match], dict[int, np.ndarray], tuple[float, float, float]]:
        """Align, embed (one batch) and match the faces the tracker asked for.

        Returns:
            detection index -> match, detection index -> embedding, and the align, embed and match
            milliseconds.
        """
        if not to_embed:
            return {}, {}, (0.0, 0.0, 0.0)
        t = time.perf_counter()
        crops = np.stack([align_face(image_bgr, detections[i].landmarks) for i in to_embed])
        align_ms = _ms(t)
        t = time.perf_counter()
        embeddings = self._embedder.embed(crops)
        embed_ms = _ms(t)
        t = time.perf_counter()
        matches = dict(zip(to_embed, self._matcher.match(embeddings), strict=True))
        stored = dict(zip(to_embed, embeddings, strict=True))
        return matches, stored, (align_ms, embed_ms, _ms(t))

    def process(
        self,
        image_bgr: np.ndarray,
        frame_index: int,
        timestamp: float,
        decode_ms: float = 0.0,
        *,
        stream_id: int = 0,
    ) -> FrameResult:
        """Recognize every face of one frame.

        Args:
            image_bgr: ``(H, W, 3) uint8`` BGR frame.
            frame_index: its index in the stream (increasing within a stream).
            timestamp: seconds into the stream.
            decode_ms: what decoding the frame cost, for the timings.
            stream_id: the frame's stream (``Frame.stream_id``); a new one ends the old first (``left``s).

        Returns:
            the faces with their tracks and identities, the stage timings and the events.

        Raises:
            GhostFaceError: new settings asked for a model that cannot be built (the old one stays).
            ValueError: the frame is not a uint8 image.
        """
        ended, redecide_ms = self._prepare(stream_id, frame_index, timestamp)
        detections, detect_ms = self._detect(image_bgr)
        assignment, track_ms = self._assign_tracks(image_bgr, detections, frame_index)
        matches, stored, (align_ms, embed_ms, match_ms) = self._embed_and_match(
            image_bgr, detections, assignment.to_embed
        )

        t = time.perf_counter()
        faces: list[Face] = self._tracker.update(assignment, detections, matches, stored)
        events = ended + self._emitter.update(faces, image_bgr, frame_index, timestamp)
        track_ms += _ms(t)
        self._last_frame = (frame_index, timestamp)
        return FrameResult(
            frame=image_bgr,
            frame_index=frame_index,
            timestamp=timestamp,
            faces=tuple(faces),
            timings=StageTimings(
                decode_ms=decode_ms,
                detect_ms=detect_ms,
                align_ms=align_ms,
                embed_ms=embed_ms,
                match_ms=match_ms + redecide_ms,
                track_ms=track_ms,
            ),
            events=tuple(events),
            stream_id=stream_id,
        )
