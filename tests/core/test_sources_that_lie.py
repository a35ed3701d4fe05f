"""Issue 12, point 10: a damaged mp4 skips its hole; camera -1 is a camera index, not a missing file."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.capture import open_source
from core.errors import SourceError


def _video(path: Path, frames: int = 100) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (160, 120))
    rng = np.random.default_rng(0)
    for i in range(frames):
        frame = np.full((120, 160, 3), (i * 2) % 255, np.uint8)
        cv2.putText(frame, str(i), (20, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255, 255, 255), 3)
        frame[::2, ::3] = rng.integers(0, 255, (60, 54, 3), dtype=np.uint8)
        writer.write(frame)
    writer.release()
    return path


def test_a_damaged_mp4_skips_the_hole_and_plays_on(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = bytearray(_video(tmp_path / "good.mp4").read_bytes())
    start, end = int(len(data) * 0.4), int(len(data) * 0.6)
    data[start:end] = bytes(end - start)  # a hole of zeros in the middle of the frames
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="core.capture"), open_source(str(damaged)) as source:
        frames = list(source)
    stamps = [f.timestamp for f in frames]
    assert len(frames) >= 60  # stopping at the hole gave 38 of 100
    assert "damaged stretch" in caplog.text
    assert stamps == sorted(stamps) and stamps[-1] > 7.0  # the clock jumps over the hole (10 fps)


def test_a_good_video_reads_every_frame(tmp_path: Path) -> None:
    with open_source(str(_video(tmp_path / "good.mp4", 30))) as source:
        assert len(list(source)) == 30


@pytest.mark.parametrize("spec", ["-1", -1, " -2 "])
def test_a_negative_camera_index_is_reported_as_a_camera_index(spec: object) -> None:
    with pytest.raises(SourceError, match="camera index must be 0 or more") as err:
        open_source(spec)  # type: ignore[arg-type]
    assert "no such file" not in str(err.value)


class _CameraWithoutFps:
    """A camera (none exists here) that states no frame rate and no frame count, as many do."""

    def __init__(self, clip: Path) -> None:
        self._cap = cv2.VideoCapture(str(clip))

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self._cap.isOpened()

    def read(self):
        return self._cap.read()

    def get(self, prop: int) -> float:
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        self._cap.release()


def test_a_camera_that_states_no_frame_rate_opens(hamilton_clip: Path) -> None:
    with open_source("0", capture_factory=lambda target: _CameraWithoutFps(hamilton_clip)) as source:
        assert source.description.startswith("camera 0 (") and "fps" not in source.description
        assert next(iter(source)).image.size
