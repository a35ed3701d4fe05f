"""Frame sources: a camera, a video file or stream, or a folder of images, all iterated as ``Frame`` s.

A source is not thread-safe: create it, iterate it and close it on one thread (the capture worker).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import cv2
import numpy as np

from core._image import IMAGE_SUFFIXES, read_image
from core.errors import ImageReadError, SourceError

__all__ = [
    "IMAGE_EXTENSIONS",
    "camera_index",
    "is_live_source",
    "CaptureFactory",
    "Frame",
    "FrameSource",
    "VideoCaptureLike",
    "list_cameras",
    "open_source",
]

logger = logging.getLogger(__name__)

# The photo formats, and TIFF: a folder of frames from a camera or a microscope is often TIFF, which
# OpenCV decodes; the gallery keeps to the common photo formats.
IMAGE_EXTENSIONS = IMAGE_SUFFIXES | {".tif", ".tiff"}

# At most this many frames are stepped over to get past a damaged stretch of a video file.
_MAX_SKIPPED_FRAMES = 10_000
# A camera that fails this many reads in a row is taken as lost (unplugged, taken by another app).
DEFAULT_MAX_FAILED_READS = 25
# Pause between failed camera reads, so that a brief stall is not mistaken for a lost camera.
_FAILED_READ_PAUSE_S = 0.02


class VideoCaptureLike(Protocol):
    """The part of ``cv2.VideoCapture`` a source uses; tests inject a fake camera through it."""

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        """Whether the device or file was opened."""

    def read(self) -> tuple[bool, np.ndarray | None]:
        """Grab and decode the next frame: ``(True, BGR frame)``, or ``(False, None)`` when none came."""

    def get(self, prop_id: int) -> float:
        """The value of a ``cv2.CAP_PROP_*`` property (0 when the backend does not know it)."""

    def set(self, prop_id: int, value: float) -> bool:
        """Ask for a ``cv2.CAP_PROP_*`` value; False when the backend refuses it."""

    def release(self) -> None:
        """Close the device or file."""


# (camera index, or file path / stream URL as text) -> an opened (or failed) capture.
CaptureFactory = Callable[[int | str], VideoCaptureLike]


def _default_factory(target: int | str) -> VideoCaptureLike:
    return cv2.VideoCapture(target)


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame.

    Attributes:
        image: ``(H, W, 3) uint8`` BGR.
        index: position in the stream, counting from 0; restarts at 0 when a video loops.
        timestamp: seconds into the stream (video time; since opening for a camera; a nominal one
            second per image for a folder); restarts at 0 when a video loops.
        decode_ms: milliseconds spent reading and decoding this frame.
        stream_id: which pass over a looping video this frame belongs to: 0 for the first, one more
            at every loop. Each pass is a new stream (everyone in view has left at its end), so a
            consumer that sees the id change ends the old stream even if it missed the pass's first
            frame (latest frame wins). An image folder, looped or not, is one stream.
    """

    image: np.ndarray
    index: int
    timestamp: float
    decode_ms: float
    stream_id: int = 0


class FrameSource:
    """Base class of the sources :func:`open_source` returns. Iterate it to get :class:`Frame` s.

    Attributes:
        fps: frames per second the source declares, or None (folders; cameras that do not say).
        frame_count: number of frames (or images) in one pass, or None for a camera or stream.
        description: one line for people ("camera 0 (1280x720)", "video clip.mp4 (...)").
        is_camera: True for live sources (camera or network stream).
    """

    fps: float | None = None
    frame_count: int | None = None
    description: str = ""
    is_camera: bool = False

    def __init__(self) -> None:
        self._closed = False

    def read(self) -> Frame | None:
        """The next frame, or None at the end.

        Raises:
            SourceError: a live source stopped delivering frames, or the source is closed.
        """
        if self._closed:
            raise SourceError(f"{self.description or 'source'} is closed")
        return self._read()

    def _read(self) -> Frame | None:
        raise NotImplementedError

    def __iter__(self) -> Iterator[Frame]:
        while True:
            frame = self.read()
            if frame is None:
                return
            yield frame

    def close(self) -> None:
        """Release the device or file; safe to call twice."""
        self._closed = True

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called."""
        return self._closed

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


def _not_opened(target: int | str, is_camera: bool) -> SourceError:
    """The clear error for a source OpenCV could not open, saying what it was."""
    if isinstance(target, int):
        return SourceError(
            f"camera {target} could not be opened: there is no such camera, or another "
            "application is using it"
        )
    if is_camera:
        return SourceError(f"stream {target} could not be opened")
    return SourceError(
        f"cannot read {target}: not a video OpenCV can decode (damaged, truncated, or an "
        "unsupported format)"
    )


class _CaptureSource(FrameSource):
    """A camera, a video file or a network stream, read through ``cv2.VideoCapture``."""

    def __init__(
        self,
        target: int | str,
        *,
        is_camera: bool,
        width: int | None,
        height: int | None,
        loop: bool,
        realtime: bool,
        max_failed_reads: int,
        factory: CaptureFactory,
    ) -> None:
        super().__init__()
        self.is_camera = is_camera
        self._target = target
        self._loop = loop and not is_camera
        self._realtime = realtime and not is_camera
        self._max_failed_reads = max(1, max_failed_reads)
        if isinstance(target, int):
            label = f"camera {target}"
        elif is_camera:
            label = f"stream {target}"
        else:
            label = f"video {Path(target).name}"
        self._factory = factory
        self._cap = factory(target)
        if self._cap is None or not self._cap.isOpened():
            self._release()
            raise _not_opened(target, is_camera)
        if width:
            self._cap.set(cv2.CAP_PROP_FRAME_WIDTH, float(width))
        if height:
            self._cap.set(cv2.CAP_PROP_FRAME_HEIGHT, float(height))
        fps = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        # Some drivers report nonsense (0, NaN, 1000); only trust a plausible value.
        self.fps = fps if 0.5 < fps < 500 else None
        count = int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0) if not is_camera else 0
        self.frame_count = count if count > 0 else None
        self._pass_index = 0  # frames read in the current pass over a looping file (the frame index)
        self._stream_id = 0  # passes completed over a looping file
        self._started = time.monotonic()
        # Wall-clock time at which source time 0 is due (realtime files); set by the first read.
        self._clock_zero: float | None = None
        # Read the first frame now: a file that opens but does not decode is refused at once.
        first = self._grab(first=True)
        if first is None:
            self._release()
            if isinstance(target, int):
                raise SourceError(f"camera {target} opened but delivers no frames")
            raise SourceError(f"cannot read {target}: it contains no decodable frame")
        self._pending: tuple[np.ndarray, float] | None = first
        h, w = first[0].shape[:2]
        details = [f"{w}x{h}"]
        details += [f"{self.fps:.2f} fps"] if self.fps else []
        details += [f"{self.frame_count} frames"] if self.frame_count else []
        self.description = f"{label} ({', '.join(details)})"
        self._started = time.monotonic()

    def _grab(self, *, first: bool = False) -> tuple[np.ndarray, float] | None:
        """Read one frame: (image, decode ms), or None at the end of a file."""
        failures = 0
        while True:
            start = time.perf_counter()
            ok, image = self._cap.read()
            decode_ms = (time.perf_counter() - start) * 1000.0
            if ok and image is not None and image.size:
                return _to_bgr(image), decode_ms
            if not self.is_camera:
                return None if first else self._skip_damage(start)
            failures += 1
            if failures >= self._max_failed_reads:
                if first:
                    return None
                raise SourceError(
                    f"{self.description or self._target} stopped delivering frames "
                    f"({failures} reads in a row failed): it was unplugged or taken by another application"
                )
            time.sleep(_FAILED_READ_PAUSE_S)

    def _skip_damage(self, start: float) -> tuple[np.ndarray, float] | None:
        """After a failed read inside a file of known length, the next frame that decodes, or None.

        A damaged stretch of an mp4 makes ``read()`` fail while ``grab()`` still moves on through the
        packets: stepping over the hole keeps the rest of the video (seeking does not help, it lands
        before the hole again).
        """
        position = self._pass_index
        if not self.frame_count or position >= self.frame_count - 1:
            return None  # the real end, or a file whose length is unknown
        # Not part of VideoCaptureLike: a stand-in capture without them simply ends at the hole.
        grab, retrieve = getattr(self._cap, "grab", None), getattr(self._cap, "retrieve", None)
        if grab is None or retrieve is None:
            return None
        for tries in range(1, min(self.frame_count - position, _MAX_SKIPPED_FRAMES) + 1):
            if not grab():
                continue
            ok, image = retrieve()
            if ok and image is not None and image.size:
                logger.warning(
                    "%s: a damaged stretch after frame %d was skipped (%d frames)",
                    self.description,
                    position,
                    tries,
                )
                self._pass_index += tries  # keeps the time stamps of what follows on the file's clock
                return _to_bgr(image), (time.perf_counter() - start) * 1000.0
        return None

    def _read(self) -> Frame | None:
        if self._pending is not None:
            image, decode_ms = self._pending
            self._pending = None
        else:
            grabbed = self._grab()
            if grabbed is None and self._loop and self._pass_index > 0:
                self._rewind()
                grabbed = self._grab()
            if grabbed is None:
                self._warn_if_short()
                return None
            image, decode_ms = grabbed
        if self.is_camera:
            timestamp = time.monotonic() - self._started
        else:
            timestamp = self._file_time()
            if self._realtime and self.fps:
                # Keep pace with the file's own clock: sleep until this frame is due.
                if self._clock_zero is None:
                    self._clock_zero = time.monotonic() - timestamp
                delay = self._clock_zero + timestamp - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        frame = Frame(
            image=image,
            index=self._pass_index,
            timestamp=timestamp,
            decode_ms=decode_ms,
            stream_id=self._stream_id,
        )
        self._pass_index += 1
        return frame

    def _file_time(self) -> float:
        if self.fps:
            return self._pass_index / self.fps
        return float(self._cap.get(cv2.CAP_PROP_POS_MSEC) or 0.0) / 1000.0

    def _rewind(self) -> None:
        # A new pass is a new stream: its frames count and its clock run from 0 again. Realtime pacing
        # goes on without a jump: the new pass's first frame is due one frame after the last one.
        if self._clock_zero is not None:
            self._clock_zero += self._pass_index / self.fps if self.fps else self._file_time()
        self._pass_index = 0
        self._stream_id += 1
        if not self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0.0):
            # Not every backend can seek; reopening always works for a file.
            self._cap.release()
            self._cap = self._factory(self._target)
        logger.debug("%s: looping back to the start", self.description)

    def _warn_if_short(self) -> None:
        # A file that ends well before its declared length is damaged; say so rather than end quietly.
        if self.frame_count and self._pass_index < 0.95 * self.frame_count - 1:
            logger.warning(
                "%s ended after %d of %d frames: the file may be truncated or damaged",
                self.description,
                self._pass_index,
                self.frame_count,
            )

    def _release(self) -> None:
        if self._cap is not None:
            try:
                self._cap.release()
            except Exception:  # a broken driver must not stop the shutdown
                logger.exception("releasing %s failed", self._target)

    def close(self) -> None:
        if not self._closed:
            self._release()
        super().close()


class _FolderSource(FrameSource):
    """The image files of a folder (or one image file), in name order; unreadable ones are skipped."""

    def __init__(self, files: list[Path], label: str, *, loop: bool) -> None:
        super().__init__()
        self._files = files
        self._loop = loop
        self._position = 0
        self._index = 0
        self._good_in_pass = 0
        self.skipped: list[Path] = []
        self.frame_count = len(files)
        self.description = label

    def _read(self) -> Frame | None:
        while True:
            if self._position >= len(self._files):
                if not self._loop or self._good_in_pass == 0:
                    return None
                self._position = 0
                self._good_in_pass = 0
            path = self._files[self._position]
            self._position += 1
            start = time.perf_counter()
            image = _read_image(path)
            decode_ms = (time.perf_counter() - start) * 1000.0
            if image is None:
                if path not in self.skipped:
                    self.skipped.append(path)
                    logger.warning("skipping %s: not a readable image", path)
                continue
            self._good_in_pass += 1
            frame = Frame(image=image, index=self._index, timestamp=float(self._index), decode_ms=decode_ms)
            self._index += 1
            return frame


def _to_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _read_image(path: Path) -> np.ndarray | None:
    """The image as ``(H, W, 3) uint8`` BGR, or None (the reason logged) when it cannot be read.

    Regular files only, size and pixel count checked first: a named pipe must not block the source and
    a decompression bomb must not take gigabytes (core/_image.py).
    """
    try:
        return read_image(path)
    except ImageReadError as exc:
        logger.warning("%s", exc)
        return None


def is_live_source(spec: Any) -> bool:
    """True for a camera or a network stream: live sources, never looped, ended only when lost."""
    return camera_index(spec) is not None or "://" in str(spec)


def camera_index(spec: Any) -> int | None:
    """The camera index a source names (``0``, ``"1"``), or None for a file, folder or stream."""
    if isinstance(spec, bool):
        return None
    if isinstance(spec, int):
        return spec
    if isinstance(spec, str):
        text = spec.strip()
        # "-1" too: a mistyped camera index, to be refused as one rather than looked for as a file.
        if text.isdigit() or (text.startswith("-") and text[1:].isdigit()):
            return int(text)
    return None


def _image_source(path: Path, *, loop: bool) -> FrameSource:
    """A folder of images (in name order), or one image, as a frame source."""
    if path.is_dir():
        files = sorted(
            (p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
            key=lambda p: p.name.lower(),
        )
        if not files:
            raise SourceError(f"folder {path} holds no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        return _FolderSource(files, f"folder {path.name} ({len(files)} images)", loop=loop)
    if _read_image(path) is None:
        raise SourceError(f"cannot read {path}: not a readable image")
    return _FolderSource([path], f"image {path.name}", loop=loop)


def open_source(
    spec: str | int | Path,
    *,
    width: int | None = None,
    height: int | None = None,
    loop: bool = False,
    realtime: bool = False,
    max_failed_reads: int = DEFAULT_MAX_FAILED_READS,
    capture_factory: CaptureFactory | None = None,
) -> FrameSource:
    """Open a camera, a video file or stream, an image folder, or one image.

    Args:
        spec: a camera index (``0`` or ``"0"``), a video file, a stream URL (``rtsp://...``), a folder
            of images (read in name order) or one image file.
        width: requested camera width in pixels (the camera may pick the nearest it supports).
        height: requested camera height in pixels.
        loop: start a video file or folder again when it ends.
        realtime: deliver a video file's frames no faster than its frame rate.
        max_failed_reads: a camera or stream failing this many reads in a row raises
            :class:`SourceError` from iteration.
        capture_factory: builds the ``cv2.VideoCapture``-like object for a camera index, a file or a
            URL; None means ``cv2.VideoCapture``. Tests use it to stand in for a camera.

    Returns:
        An open :class:`FrameSource`; close it (or use it as a context manager).

    Raises:
        SourceError: the file or folder does not exist, is not a decodable video, holds no images,
            or the camera cannot be opened.
    """
    factory = capture_factory or _default_factory
    index = camera_index(spec)
    if index is not None and index < 0:
        raise SourceError(f"camera index must be 0 or more, got {index}")
    text = str(spec)
    if is_live_source(spec):
        # A camera index or a network stream: live, so neither looped nor throttled.
        return _CaptureSource(
            index if index is not None else text,
            is_camera=True,
            width=width,
            height=height,
            loop=False,
            realtime=False,
            max_failed_reads=max_failed_reads,
            factory=factory,
        )
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"no such file or folder: {path}")
    if path.is_dir() or path.suffix.lower() in IMAGE_EXTENSIONS:
        return _image_source(path, loop=loop)
    return _CaptureSource(
        str(path),
        is_camera=False,
        width=None,
        height=None,
        loop=loop,
        realtime=realtime,
        max_failed_reads=max_failed_reads,
        factory=factory,
    )


def list_cameras(max_index: int = 5, *, capture_factory: CaptureFactory | None = None) -> list[int]:
    """The camera indexes below ``max_index`` that open and deliver a frame.

    Probing opens each device briefly; do it off the GUI thread.
    """
    factory = capture_factory or _default_factory
    found: list[int] = []
    for index in range(max(0, max_index)):
        cap = factory(index)
        try:
            if cap is not None and cap.isOpened():
                ok, image = cap.read()
                if ok and image is not None:
                    found.append(index)
        finally:
            if cap is not None:
                cap.release()
    return found
