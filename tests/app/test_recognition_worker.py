"""The capture/inference worker on the real Hamilton clip, with real models and a real gallery."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import pytest

from app.recognition_worker import RecognitionController, SourceState
from core.settings import Settings
from core.types import FrameResult

START_TIMEOUT_MS = 60_000


def _settings(clip: Path, gallery: Path | None = None, **camera: object) -> Settings:
    return Settings().replace(
        camera={"source": str(clip), "loop_video": True, "max_fps": 240.0, **camera},
        gallery_dir=str(gallery) if gallery else "",
    )


@pytest.fixture
def controller(qtbot):
    ctl = RecognitionController(Settings())
    yield ctl
    assert ctl.stop(), "the worker thread did not stop"
    assert not ctl.is_running()


def test_worker_emits_results_for_a_video_and_stops_cleanly(
    qtbot,
    controller: RecognitionController,
    hamilton_clip: Path,
    hamilton_gallery: Path,
    no_leaked_threads: None,
) -> None:
    results: list[FrameResult] = []
    states: list[str] = []
    stats: list = []
    controller.frame_ready.connect(results.append)
    controller.stats_ready.connect(stats.append)
    controller.source_state.connect(lambda state, _msg: states.append(state))
    controller.realtime = False
    with qtbot.waitSignal(controller.engine_ready, timeout=START_TIMEOUT_MS) as engine:
        controller.start(_settings(hamilton_clip, hamilton_gallery))
    info = engine.args[0]
    assert info.gallery_people == 2 and info.gallery_embeddings == 3
    assert info.detector_device == "cpu" and info.embedder_device == "cpu"
    assert info.embedder_runtime == "opencv-dnn"
    qtbot.waitUntil(lambda: len(results) >= 20 and len(stats) >= 2, timeout=START_TIMEOUT_MS)
    indexes = [r.frame_index for r in results]
    assert indexes == sorted(indexes) and len(set(indexes)) == len(indexes)
    assert results[0].frame.shape == (360, 640, 3)
    assert any(r.faces for r in results)
    assert stats[-1].fps > 0 and stats[-1].processed > stats[0].processed
    assert stats[-1].mean_timings.detect_ms > 0
    assert SourceState.RUNNING in states

    with qtbot.waitSignal(controller.stopped, timeout=20_000):
        assert controller.stop()
    assert not controller.is_running()
    seen = len(results)
    qtbot.wait(200)
    assert len(results) == seen, "results kept coming after stop"


def test_threshold_change_while_running_changes_the_names_within_a_few_frames(
    qtbot,
    controller: RecognitionController,
    hamilton_clip: Path,
    hamilton_gallery: Path,
) -> None:
    results: list[FrameResult] = []
    controller.frame_ready.connect(results.append)
    controller.realtime = False
    settings = _settings(hamilton_clip, hamilton_gallery)
    controller.start(settings)
    # Lin-Manuel Miranda is on stage from the first frames: wait until he is named.
    qtbot.waitUntil(
        lambda: any(f.person == "Lin-Manuel Miranda" for r in results[-3:] for f in r.faces),
        timeout=START_TIMEOUT_MS,
    )
    applied_at = len(results)
    controller.apply_settings(
        settings.replace(recognition={"threshold_from_model": False, "similarity_threshold": 0.99})
    )

    def everyone_unknown_since() -> int | None:
        for i in range(applied_at, len(results)):
            tail = results[i:]
            if (
                len(tail) >= 5
                and all(f.person is None for r in tail for f in r.faces)
                and any(r.faces for r in tail)
            ):
                return i - applied_at
        return None

    qtbot.waitUntil(lambda: everyone_unknown_since() is not None, timeout=START_TIMEOUT_MS)
    lag = everyone_unknown_since()
    # Every live track is decided again from its stored embedding at the worker's next frame; what
    # may still arrive with the old names is the frame being processed when the change was made and
    # the one already on its way to the GUI.
    assert lag is not None and lag <= 3, f"names stayed for {lag} frames after the change"

    # And back: the names return once the threshold is sensible again.
    back_at = len(results)
    controller.apply_settings(settings)
    qtbot.waitUntil(
        lambda: any(f.person is not None for r in results[back_at:] for f in r.faces),
        timeout=START_TIMEOUT_MS,
    )
    back_lag = next(i for i, r in enumerate(results[back_at:]) if any(f.person for f in r.faces))
    # One frame more than above: should a shot cut fall just there, the new track needs its two votes.
    assert back_lag <= 4, f"names took {back_lag} frames to return"


def test_missing_source_is_reported_and_retried(
    qtbot, controller: RecognitionController, tmp_path: Path
) -> None:
    states: list[tuple[str, str]] = []
    controller.source_state.connect(lambda state, msg: states.append((state, msg)))
    controller.start(_settings(tmp_path / "missing.mp4"))
    qtbot.waitUntil(
        lambda: sum(s == SourceState.UNAVAILABLE for s, _ in states) >= 2, timeout=START_TIMEOUT_MS
    )
    message = next(m for s, m in states if s == SourceState.UNAVAILABLE)
    assert "missing.mp4" in message and "Retrying" in message
    assert controller.is_running(), "a missing source is retried, not fatal"


def test_end_of_a_video_without_loop_stops_the_worker(
    qtbot, controller: RecognitionController, hamilton_clip: Path, tmp_path: Path
) -> None:
    # A short real clip: the first 12 frames of the Hamilton clip, re-encoded.
    short = tmp_path / "short.avi"
    cap = cv2.VideoCapture(str(hamilton_clip))
    writer = cv2.VideoWriter(str(short), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (640, 360))
    for _ in range(12):
        ok, frame = cap.read()
        assert ok
        writer.write(frame)
    writer.release()
    cap.release()
    results: list[FrameResult] = []
    controller.frame_ready.connect(results.append)
    states: list[str] = []
    controller.source_state.connect(lambda state, _msg: states.append(state))
    controller.realtime = False
    with qtbot.waitSignal(controller.stopped, timeout=START_TIMEOUT_MS):
        controller.start(_settings(short, loop_video=False))
    assert SourceState.ENDED in states
    assert not controller.is_running()
    # Not realtime: every frame was processed, none dropped.
    assert [r.frame_index for r in results] == list(range(12))


class _CameraThatIsUnplugged:
    """Stands in for a camera (none exists here): real frames from the clip, then read failures.

    The first time it is opened it delivers ``frames`` frames and then fails every read, as an
    unplugged USB camera does; opened again, it works (the camera was plugged back in).
    """

    opened = 0

    def __init__(self, clip: Path, frames: int) -> None:
        type(self).opened += 1
        self._cap = cv2.VideoCapture(str(clip))
        self._left = frames if type(self).opened == 1 else 10**9

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return self._cap.isOpened()

    def read(self):
        if self._left <= 0:
            return False, None
        self._left -= 1
        time.sleep(1 / 30)  # a camera delivers at its own rate
        ok, frame = self._cap.read()
        if not ok:  # a camera never runs out of pictures: start the clip again
            self._cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self._cap.read()
        return ok, frame

    def get(self, prop: int) -> float:
        return 0.0  # a camera states no frame count and, often, no frame rate

    def set(self, prop: int, value: float) -> bool:
        return True

    def release(self) -> None:
        self._cap.release()


def test_lost_camera_is_reported_and_retried_until_it_is_back(
    qtbot, controller: RecognitionController, hamilton_clip: Path
) -> None:
    _CameraThatIsUnplugged.opened = 0
    controller.capture_factory = lambda target: _CameraThatIsUnplugged(hamilton_clip, frames=15)
    states: list[tuple[str, str]] = []
    results: list[FrameResult] = []
    controller.source_state.connect(lambda state, msg: states.append((state, msg)))
    controller.frame_ready.connect(results.append)
    controller.start(Settings().replace(camera={"source": "0", "max_fps": 240.0}))
    qtbot.waitUntil(lambda: any(s == SourceState.LOST for s, _ in states), timeout=START_TIMEOUT_MS)
    lost = next(m for s, m in states if s == SourceState.LOST)
    assert "camera 0" in lost and "Retrying" in lost
    before = len(results)
    assert before > 0
    qtbot.waitUntil(lambda: [s for s, _ in states].count(SourceState.RUNNING) >= 2, timeout=START_TIMEOUT_MS)
    qtbot.waitUntil(lambda: len(results) > before + 3, timeout=START_TIMEOUT_MS)
    assert _CameraThatIsUnplugged.opened == 2
    assert controller.is_running()


def test_a_stage_that_cannot_be_built_is_reported_and_the_video_goes_on(
    qtbot, controller: RecognitionController, hamilton_clip: Path, tmp_path: Path
) -> None:
    errors: list[BaseException] = []
    results: list[FrameResult] = []
    controller.error.connect(errors.append)
    controller.frame_ready.connect(results.append)
    controller.realtime = False
    settings = _settings(hamilton_clip)
    controller.start(settings)
    qtbot.waitUntil(lambda: len(results) >= 3, timeout=START_TIMEOUT_MS)
    missing = tmp_path / "no-such-checkpoint.pt"
    controller.apply_settings(settings.replace(recognition={"embedder": f"ghostfacenetv2:{missing}"}))
    qtbot.waitUntil(lambda: bool(errors), timeout=START_TIMEOUT_MS)
    assert "no-such-checkpoint.pt" in str(errors[0])
    after = len(results)
    qtbot.waitUntil(lambda: len(results) >= after + 5, timeout=START_TIMEOUT_MS)
    assert len(errors) == 1, "the failed change is reported once, not once per frame"
    assert controller.is_running()


def test_a_file_that_is_not_a_video_is_reported_once_not_retried_forever(
    qtbot, controller: RecognitionController, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.mp4"
    notes.write_text("this is not a video\n" * 100)
    states: list[tuple[str, str]] = []
    controller.source_state.connect(lambda state, msg: states.append((state, msg)))
    controller.start(_settings(notes))
    qtbot.waitUntil(lambda: any(s == SourceState.UNAVAILABLE for s, _ in states), timeout=START_TIMEOUT_MS)
    qtbot.wait(5000)  # two retry intervals
    unavailable = [m for s, m in states if s == SourceState.UNAVAILABLE]
    assert len(unavailable) == 1 and "notes.mp4" in unavailable[0] and "Retrying" not in unavailable[0]
    assert controller.is_running()  # still there: choosing another source starts it
