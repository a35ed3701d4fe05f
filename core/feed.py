"""A latest-frame reader: a frame source read on its own thread, keeping only the newest frame.

Recognition is slower than a camera; queued frames would make the picture lag further and further
behind. The reader therefore keeps one slot: a frame the consumer had no time to take is replaced by
the next one (and counted). Used by the app's live worker; any other consumer of a live source (a
command-line tool) can use it the same way.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from core.capture import CaptureFactory, Frame, open_source
from core.settings import CameraSettings

__all__ = ["FeedEnded", "LatestFrameReader"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedEnded:
    """What :meth:`LatestFrameReader.get` returns once a video file or an image folder came to its end."""


_ENDED = FeedEnded()


class LatestFrameReader:
    """Reads a frame source on its own thread and keeps only the newest frame (latest frame wins).

    The source is opened, iterated and closed on the reader's thread (sources are single-threaded).
    :meth:`get` returns the newest :class:`core.capture.Frame`, an exception (the source could not be
    opened or was lost), a :class:`FeedEnded` (a file or folder ended) or None (nothing new yet).
    With ``drop=False`` the reader waits for the consumer instead (every frame is processed:
    benchmarks and tests).

    Args:
        camera: what to open, at which resolution, and whether a video loops.
        realtime: pace a video file at its own frame rate, as a camera would deliver it.
        drop: replace a frame nobody took yet by the newer one (else wait for the consumer).
        capture_factory: builds the ``cv2.VideoCapture``-like object (tests stand in for a camera).
    """

    def __init__(
        self,
        camera: CameraSettings,
        *,
        realtime: bool,
        drop: bool,
        capture_factory: CaptureFactory | None = None,
    ) -> None:
        self._camera = camera
        self._capture_factory = capture_factory
        self._realtime = realtime
        self._drop = drop
        self._cond = threading.Condition()
        self._item: Frame | BaseException | FeedEnded | None = None
        self._stop = threading.Event()
        #: Frames replaced before anyone took them.
        self.dropped = 0
        #: The source as it describes itself once open (its spec until then).
        self.description = camera.source
        #: Whether the open source is a camera (a stream that never ends by itself).
        self.is_camera = False
        # A daemon thread: a source stuck in a driver call must not keep the process alive at exit;
        # stop() joins it in every ordinary case.
        self._thread = threading.Thread(target=self._run, name="frame-feed", daemon=True)

    def start(self) -> LatestFrameReader:
        """Start reading; returns self."""
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop reading and wait for the thread (logged if it does not end in time)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("the frame reader did not stop within %.0f s", timeout_s)

    def get(self, timeout_s: float) -> Frame | BaseException | FeedEnded | None:
        """The newest item, waiting at most ``timeout_s`` for one; None when nothing came."""
        with self._cond:
            if self._item is None:
                self._cond.wait(timeout_s)
            item, self._item = self._item, None
            self._cond.notify_all()
            return item

    def _put(self, item: Frame | BaseException | FeedEnded) -> None:
        with self._cond:
            if self._item is not None and not self._drop:
                while self._item is not None and not self._stop.is_set():
                    self._cond.wait(0.1)
            if isinstance(self._item, Frame):
                self.dropped += 1
            self._item = item
            self._cond.notify_all()

    def _run(self) -> None:
        cam = self._camera
        try:
            source = open_source(
                cam.source,
                width=cam.width,
                height=cam.height,
                loop=cam.loop_video,
                realtime=self._realtime,
                capture_factory=self._capture_factory,
            )
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which reports and retries
            self._put(exc)
            return
        self.description = source.description
        self.is_camera = bool(source.is_camera)
        try:
            while not self._stop.is_set():
                try:
                    frame = source.read()
                except Exception as exc:  # noqa: BLE001 - a lost camera: the consumer reports and retries
                    self._put(exc)
                    return
                self._put(_ENDED if frame is None else frame)
                if frame is None:
                    return
        finally:
            source.close()
