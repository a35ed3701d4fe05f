"""Frame sources on the real Hamilton clip and real photos; a fake only for the camera, which cannot exist here."""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.capture import Frame, list_cameras, open_source
from core.errors import SourceError

CLIP_FRAMES = 275
CLIP_FPS = 29.97


class FakeCamera:
    """Stands in for ``cv2.VideoCapture(index)``: delivers ``good_frames`` frames, then fails every read."""

    def __init__(self, good_frames: int, *, opened: bool = True) -> None:
        self.good_frames = good_frames
        self.opened = opened
        self.reads = 0
        self.released = False
        self.props: dict[int, float] = {cv2.CAP_PROP_FPS: 30.0}

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self.opened and not self.released

    def read(self) -> tuple[bool, np.ndarray | None]:
        self.reads += 1
        if self.reads <= self.good_frames:
            w = int(self.props.get(cv2.CAP_PROP_FRAME_WIDTH, 320))
            h = int(self.props.get(cv2.CAP_PROP_FRAME_HEIGHT, 240))
            return True, np.full((h, w, 3), self.reads % 256, np.uint8)
        return False, None

    def get(self, prop_id: int) -> float:
        return self.props.get(prop_id, 0.0)

    def set(self, prop_id: int, value: float) -> bool:
        self.props[prop_id] = value
        return True

    def release(self) -> None:
        self.released = True


def test_video_file_frames_fps_and_timestamps(hamilton_clip: Path) -> None:
    with open_source(hamilton_clip) as source:
        assert not source.is_camera
        assert source.fps == pytest.approx(CLIP_FPS, abs=0.01)
        assert source.frame_count == CLIP_FRAMES
        assert "640x360" in source.description and hamilton_clip.name in source.description
        frames = list(source)
    assert len(frames) == CLIP_FRAMES
    assert [f.index for f in frames] == list(range(CLIP_FRAMES))
    first, last = frames[0], frames[-1]
    assert isinstance(first, Frame)
    assert first.image.shape == (360, 640, 3) and first.image.dtype == np.uint8
    assert first.timestamp == 0.0
    assert last.timestamp == pytest.approx((CLIP_FRAMES - 1) / CLIP_FPS, abs=1e-3)
    assert all(f.decode_ms >= 0 for f in frames)
    # The frames are the decoded video, not copies of one frame.
    assert not np.array_equal(first.image, last.image)
    assert source.closed


def test_each_loop_of_a_video_is_a_new_stream_from_frame_0(hamilton_clip: Path) -> None:
    with open_source(str(hamilton_clip), loop=True) as source:
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 2 * CLIP_FRAMES + 5:
                break
    # Frame index and stream time restart at every pass; the stream id says which pass it is.
    assert [f.index for f in frames] == [*range(CLIP_FRAMES), *range(CLIP_FRAMES), *range(5)]
    assert [f.stream_id for f in frames] == [0] * CLIP_FRAMES + [1] * CLIP_FRAMES + [2] * 5
    for start in (0, CLIP_FRAMES, 2 * CLIP_FRAMES):
        assert frames[start].timestamp == 0.0
    pass_times = [f.timestamp for f in frames[:CLIP_FRAMES]]
    assert all(b > a for a, b in zip(pass_times, pass_times[1:], strict=False))
    assert [f.timestamp for f in frames[CLIP_FRAMES : 2 * CLIP_FRAMES]] == pass_times
    # After wrapping, the picture is the first frame again.
    np.testing.assert_array_equal(frames[CLIP_FRAMES].image, frames[0].image)


def test_realtime_keeps_to_the_file_clock(hamilton_clip: Path) -> None:
    with open_source(hamilton_clip, realtime=True) as source:
        start = time.monotonic()
        for frame in source:
            if frame.index == 9:
                break
        elapsed = time.monotonic() - start
    # Ten frames at 29.97 fps are due over 9 / 29.97 s; without throttling they decode in far less.
    assert elapsed >= 9 / CLIP_FPS - 0.01


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file or folder"):
        open_source(tmp_path / "nope.mp4")


def test_text_file_named_mp4_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n")
    with pytest.raises(SourceError, match="not a video OpenCV can decode"):
        open_source(fake)
    assert fake.read_text() == "this is not a video\n"  # nothing lost


def test_truncated_clip_is_refused(hamilton_clip: Path, tmp_path: Path) -> None:
    data = hamilton_clip.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError, match=r"truncated\.mp4"):
        open_source(truncated)


def test_image_folder_sorted_and_unreadable_skipped(
    demo_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(demo_dir / "obama.jpg", folder / "b_obama.jpg")
    shutil.copy(demo_dir / "alex-lacamoire.png", folder / "a_alex.PNG")
    (folder / "c_broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (folder / "notes.txt").write_text("ignored: not an image extension")
    with caplog.at_level(logging.WARNING, logger="core.capture"):
        with open_source(folder) as source:
            assert source.frame_count == 3
            assert source.fps is None
            frames = list(source)
    assert [f.index for f in frames] == [0, 1]
    alex = cv2.imread(str(demo_dir / "alex-lacamoire.png"))
    obama = cv2.imread(str(demo_dir / "obama.jpg"))
    np.testing.assert_array_equal(frames[0].image, alex)
    np.testing.assert_array_equal(frames[1].image, obama)
    assert "c_broken.jpg" in caplog.text
    assert (folder / "c_broken.jpg").exists()  # skipped, never deleted


def test_folder_without_images_and_single_image(tmp_path: Path, demo_dir: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no image files"):
        open_source(tmp_path / "empty")
    with open_source(demo_dir / "obama.jpg") as source:
        frames = list(source)
    assert len(frames) == 1 and frames[0].image.shape[2] == 3


def test_missing_camera_is_a_clear_error() -> None:
    # No camera exists on a test machine; the real OpenCV backend reports that at once.
    with pytest.raises(SourceError, match="camera 7 could not be opened"):
        open_source(7)
    with pytest.raises(SourceError, match="camera 0 could not be opened"):
        open_source("0", capture_factory=lambda target: FakeCamera(0, opened=False))


def test_camera_frames_and_requested_size() -> None:
    camera = FakeCamera(good_frames=5)
    source = open_source(0, width=640, height=480, capture_factory=lambda target: camera)
    assert source.is_camera and source.frame_count is None
    assert "camera 0" in source.description and "640x480" in source.description
    frames = [source.read() for _ in range(5)]
    assert [f.index for f in frames if f] == [0, 1, 2, 3, 4]
    assert frames[0] is not None and frames[0].image.shape == (480, 640, 3)
    source.close()
    assert camera.released


def test_camera_that_stops_delivering_raises() -> None:
    camera = FakeCamera(good_frames=3)
    source = open_source(0, max_failed_reads=4, capture_factory=lambda target: camera)
    got = []
    with pytest.raises(SourceError, match="stopped delivering frames"):
        for frame in source:
            got.append(frame.index)
    assert got == [0, 1, 2]
    assert camera.reads == 3 + 4
    source.close()
    assert camera.released
    with pytest.raises(SourceError, match="closed"):
        source.read()


def test_camera_that_opens_but_never_delivers() -> None:
    with pytest.raises(SourceError, match="delivers no frames"):
        open_source(1, max_failed_reads=2, capture_factory=lambda target: FakeCamera(0))


def test_list_cameras() -> None:
    assert list_cameras(3) == []  # the real probe: no camera here
    cameras = {0: FakeCamera(1), 1: FakeCamera(0, opened=False), 2: FakeCamera(1)}
    assert list_cameras(3, capture_factory=lambda index: cameras[index]) == [0, 2]
    assert all(c.released for c in cameras.values())


def test_a_camera_that_states_no_frame_rate_opens_and_says_what_it_is(hamilton_clip: Path) -> None:
    class NoRateCamera:
        """A camera as many drivers report it: no frame rate, no frame count."""

        def __init__(self) -> None:
            self._cap = cv2.VideoCapture(str(hamilton_clip))

        def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
            return self._cap.isOpened()

        def read(self):  # type: ignore[no-untyped-def]
            return self._cap.read()

        def get(self, prop: int) -> float:
            return 0.0

        def set(self, prop: int, value: float) -> bool:
            return True

        def release(self) -> None:
            self._cap.release()

    with open_source(0, capture_factory=lambda _target: NoRateCamera()) as source:
        assert source.fps is None and source.frame_count is None
        assert source.description.startswith("camera 0 (") and "fps" not in source.description
        assert source.read() is not None
