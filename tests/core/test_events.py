"""EventEmitter (events from tracks) and EventBus (isolated, non-blocking dispatch to plugins)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.events import (
    THUMBNAIL_PX,
    BusContext,
    EventBus,
    EventEmitter,
    PluginState,
    encode_thumbnail,
    make_test_event,
)
from core.plugins import LoadedPlugin
from core.settings import EventSettings
from core.types import Detection, EventKind, Face, Match, RecognitionEvent

FPS = 30.0


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


@pytest.fixture(scope="module")
def frame(demo_dir: Path) -> np.ndarray:
    image = cv2.imread(str(demo_dir / "obama-480p.jpg"))
    assert image is not None
    return image


BOX = (250.0, 60.0, 390.0, 240.0)


def face(track: int, person: str | None, sim: float = 0.7, box: tuple[float, ...] = BOX) -> Face:
    det = Detection(np.array(box, np.float32), 0.95, np.zeros((5, 2), np.float32))
    return Face(det, track, Match(person, sim), embedded=True, track_age=10)


def run(
    emitter: EventEmitter, frame: np.ndarray, timeline: list[list[Face]], start_index: int = 0
) -> list[RecognitionEvent]:
    events: list[RecognitionEvent] = []
    for i, faces in enumerate(timeline, start=start_index):
        events += emitter.update(faces, frame, i, i / FPS)
    return events


def kinds(events: list[RecognitionEvent]) -> list[tuple[str, str | None]]:
    return [(str(e.kind), e.person) for e in events]


# ------------------------------------------------------------------------------------------ emitter


def test_a_minute_in_view_is_one_recognized_and_one_left(frame: np.ndarray) -> None:
    emitter = EventEmitter(EventSettings(), "clip.mp4")
    minute = [[face(1, "obama")] for _ in range(int(60 * FPS))]
    gone = [[] for _ in range(int(4 * FPS))]  # left_after_s is 3 s by default
    events = run(emitter, frame, minute + gone)
    assert kinds(events) == [("recognized", "obama"), ("left", "obama")]
    recognized, left = events
    assert recognized.frame_index == 0 and recognized.stream_time == 0.0
    assert recognized.source == "clip.mp4" and recognized.track_id == 1
    assert recognized.box == BOX and recognized.similarity == pytest.approx(0.7)
    # The left event describes the last sighting, not the moment the absence was noticed.
    assert left.frame_index == len(minute) - 1
    assert left.stream_time == pytest.approx((len(minute) - 1) / FPS)
    assert left.time <= time.time() and recognized.time <= left.time
    assert emitter.present == ()


def test_a_track_lost_and_regained_is_one_presence(frame: np.ndarray) -> None:
    emitter = EventEmitter(EventSettings(left_after_s=3.0), "cam")
    timeline = (
        [[face(1, "obama")] for _ in range(30)]
        + [[] for _ in range(45)]  # 1.5 s out of view: less than left_after_s
        + [[face(2, "obama")] for _ in range(30)]  # a new track for the same person
    )
    events = run(emitter, frame, timeline)
    assert kinds(events) == [("recognized", "obama")]
    assert emitter.present == ("obama",)
    end = emitter.flush(len(timeline), len(timeline) / FPS)
    assert kinds(end) == [("left", "obama")]
    assert end[0].track_id == 2


def test_cooldown_holds_back_a_second_recognized_but_not_the_left(frame: np.ndarray) -> None:
    settings = EventSettings(left_after_s=1.0, cooldown_s=60.0)
    visit = [[face(1, "obama")] for _ in range(30)]
    away = [[] for _ in range(60)]  # 2 s away: the person left
    again = [[face(7, "obama")] for _ in range(30)]
    events = run(EventEmitter(settings, "cam"), frame, visit + away + again + away)
    # Back within the cooldown: no second "recognized", but the second visit still ends with "left".
    assert kinds(events) == [("recognized", "obama"), ("left", "obama"), ("left", "obama")]
    assert events[2].track_id == 7

    no_cooldown = EventSettings(left_after_s=1.0, cooldown_s=0.0)
    events = run(EventEmitter(no_cooldown, "cam"), frame, visit + away + again + away)
    assert kinds(events) == [("recognized", "obama"), ("left", "obama")] * 2


def test_unknown_once_per_track_after_the_delay(frame: np.ndarray) -> None:
    emitter = EventEmitter(EventSettings(unknown_after_s=2.0), "cam")
    short = [[face(1, None, 0.1)] for _ in range(45)]  # 1.5 s unknown, then gone: no event
    long = [[face(2, None, 0.1)] for _ in range(150)]  # 5 s unknown: one event
    events = run(emitter, frame, short + [[]] * 10 + long)
    assert kinds(events) == [("unknown", None)]
    event = events[0]
    assert event.track_id == 2
    assert event.stream_time - (55 / FPS) == pytest.approx(2.0, abs=1.5 / FPS)
    assert event.similarity == pytest.approx(0.1)


def test_an_unknown_track_that_becomes_known_is_recognized(frame: np.ndarray) -> None:
    emitter = EventEmitter(EventSettings(unknown_after_s=2.0), "cam")
    timeline = [[face(3, None)] for _ in range(30)] + [[face(3, "obama")] for _ in range(30)]
    assert kinds(run(emitter, frame, timeline)) == [("recognized", "obama")]


def test_two_people_each_get_their_own_events(frame: np.ndarray) -> None:
    emitter = EventEmitter(EventSettings(left_after_s=1.0), "cam")
    both = [[face(1, "obama"), face(2, "biden", box=(10, 10, 60, 70))] for _ in range(30)]
    only_biden = [[face(2, "biden", box=(10, 10, 60, 70))] for _ in range(60)]
    events = run(emitter, frame, both + only_biden)
    assert kinds(events) == [("recognized", "obama"), ("recognized", "biden"), ("left", "obama")]
    assert kinds(emitter.flush(90, 3.0)) == [("left", "biden")]


def test_stream_time_going_back_ends_every_presence(frame: np.ndarray) -> None:
    emitter = EventEmitter(EventSettings(), "loop.mp4")
    first = run(emitter, frame, [[face(1, "obama")] for _ in range(60)])
    assert kinds(first) == [("recognized", "obama")]
    # The video loops: frame 0 again. The old presence ends and a new pass begins (cooldowns too).
    second = emitter.update([face(9, "obama")], frame, 0, 0.0)
    assert kinds(second) == [("left", "obama"), ("recognized", "obama")]


def test_thumbnail_is_a_small_jpeg_of_the_face(frame: np.ndarray) -> None:
    events = EventEmitter(EventSettings(), "cam").update([face(1, "obama")], frame, 0, 0.0)
    thumb = cv2.imdecode(np.frombuffer(events[0].thumbnail, np.uint8), cv2.IMREAD_COLOR)
    assert thumb is not None and max(thumb.shape[:2]) == THUMBNAIL_PX
    # It is the face crop: compare with the same crop of the frame, scaled the same way.
    x1, y1, x2, y2 = (int(v) for v in BOX)
    mx, my = int((x2 - x1) * 0.15), int((y2 - y1) * 0.15)
    crop = cv2.resize(frame[y1 - my : y2 + my, x1 - mx : x2 + mx], (thumb.shape[1], thumb.shape[0]))
    assert np.abs(crop.astype(int) - thumb.astype(int)).mean() < 12
    assert encode_thumbnail(frame, (10, 10, 10, 50)) == b""  # an empty box has no thumbnail
    assert encode_thumbnail(frame, (-50, -50, 5000, 5000))  # clipped to the frame


def test_frame_is_attached_only_when_asked(frame: np.ndarray) -> None:
    on = EventEmitter(EventSettings(attach_frame=True), "cam").update([face(1, "obama")], frame, 0, 0.0)
    full = cv2.imdecode(np.frombuffer(on[0].frame_jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert full.shape == frame.shape
    off = EventEmitter(EventSettings(attach_frame=False), "cam").update([face(1, "obama")], frame, 0, 0.0)
    assert off[0].frame_jpeg == b"" and off[0].thumbnail
    assert "frame_jpeg" not in on[0].to_dict() and "frame_jpeg" not in repr(on[0])


# ---------------------------------------------------------------------------------------------- bus


class Recorder:
    """A well-behaved plugin that remembers what it got and on which thread."""

    def __init__(self) -> None:
        self.events: list[RecognitionEvent] = []
        self.threads: set[str] = set()
        self.started: list[object] = []
        self.stopped = 0

    def on_start(self, context: object) -> None:
        self.started.append(context)

    def on_event(self, event: RecognitionEvent) -> None:
        self.threads.add(threading.current_thread().name)
        self.events.append(event)

    def on_stop(self) -> None:
        self.stopped += 1


class Raiser:
    def __init__(self) -> None:
        self.calls = 0

    def on_event(self, event: RecognitionEvent) -> None:
        self.calls += 1
        raise RuntimeError(f"boom {self.calls}")


class Sleeper:
    """Sleeps 10 s per event (released early at the end of the test so no thread lingers)."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def on_event(self, event: RecognitionEvent) -> None:
        self.calls += 1
        self.entered.set()
        self.release.wait(10.0)


def events(n: int) -> list[RecognitionEvent]:
    base = make_test_event()
    return [
        RecognitionEvent(EventKind.RECOGNIZED, base.time + i, "test", i, f"p{i}", 0.5, base.box)
        for i in range(n)
    ]


@pytest.fixture
def bus_factory() -> Iterator[Callable[..., EventBus]]:
    made: list[EventBus] = []

    def make(plugins: list[LoadedPlugin], **kw: int) -> EventBus:
        bus = EventBus(plugins, **kw)
        made.append(bus)
        return bus

    yield make
    for bus in made:
        bus.stop(timeout=1.0)


def test_a_raising_plugin_is_disabled_and_the_others_still_get_everything(
    bus_factory: Callable[..., EventBus], caplog: pytest.LogCaptureFixture
) -> None:
    good, bad = Recorder(), Raiser()
    bus = bus_factory([LoadedPlugin("bad", "test", bad), LoadedPlugin("good", "test", good)], max_failures=3)
    changes: list[tuple[str, PluginState]] = []
    bus.add_listener(lambda s: changes.append((s.name, s.state)))
    bus.start()
    sent = events(10)
    bus.publish_many(sent)
    wait_until(lambda: len(good.events) == 10)
    bus.stop()
    assert good.events == sent
    assert all(name.startswith("plugin-good") for name in good.threads)  # its own thread, not ours
    bad_status = bus.status_of("bad")
    assert bad.calls == 3  # disabled after three in a row: the rest never reached it
    assert bad_status.state is PluginState.DISABLED and bad_status.failures == 3
    assert bad_status.last_error == "on_event: RuntimeError: boom 3"
    assert ("bad", PluginState.FAILED) in changes and ("bad", PluginState.DISABLED) in changes
    assert "plugin 'bad' failed in on_event" in caplog.text
    good_status = bus.status_of("good")
    assert good_status.state is PluginState.OK and good_status.calls == 10 and good_status.failures == 0
    assert good.stopped == 1


def test_a_sleeping_plugin_does_not_block_publish_and_its_drops_are_counted(
    bus_factory: Callable[..., EventBus],
) -> None:
    sleeper, fast = Sleeper(), Recorder()
    bus = bus_factory(
        [LoadedPlugin("slow", "test", sleeper), LoadedPlugin("fast", "test", fast)], queue_size=8
    )
    bus.start()
    try:
        batch = events(200)
        bus.publish(batch[0])
        assert sleeper.entered.wait(5.0)  # the sleeper is now inside its 10 s call
        # A blocking publish would wait for the sleeper and drop nothing; these counts prove it did not.
        bus.publish_many(batch[1:])
        slow = bus.status_of("slow")
        assert slow.dropped == 199 - 8  # 8 fit in its queue, the rest are dropped and counted
        wait_until(lambda: len(fast.events) + bus.status_of("fast").dropped == 200)
        assert len(fast.events) >= 8
        # The fast plugin was served while the slow one was still in its first call.
        assert sleeper.calls == 1
        abandoned = bus.stop(timeout=0.5)
        assert abandoned == ["slow"]
        assert bus.status_of("slow").abandoned and not bus.status_of("fast").abandoned
        assert fast.stopped == 1
    finally:
        sleeper.release.set()
    # Released, the abandoned thread ends without delivering the queued events.
    wait_until(lambda: not bus.status_of("slow").running)
    assert sleeper.calls == 1


def test_a_plugin_whose_on_start_raises_gets_no_events(bus_factory: Callable[..., EventBus]) -> None:
    class BadStart(Recorder):
        def on_start(self, context: object) -> None:
            raise ValueError("bad url")

    bad, good = BadStart(), Recorder()
    bus = bus_factory([LoadedPlugin("bad", "test", bad), LoadedPlugin("good", "test", good)])
    bus.start()
    wait_until(lambda: bus.status_of("bad").state is PluginState.DISABLED)
    bus.publish_many(events(3))
    wait_until(lambda: len(good.events) == 3)
    bus.stop()
    assert bad.events == [] and bad.stopped == 0  # never started, so never stopped
    assert bus.status_of("bad").last_error == "on_start: ValueError: bad url"


def test_re_enabling_a_disabled_plugin_gives_it_another_chance(bus_factory: Callable[..., EventBus]) -> None:
    class Flaky(Recorder):
        broken = True

        def on_event(self, event: RecognitionEvent) -> None:
            if self.broken:
                raise OSError("disk full")
            super().on_event(event)

    flaky = Flaky()
    bus = bus_factory([LoadedPlugin("flaky", "test", flaky)], max_failures=2)
    bus.start()
    bus.publish_many(events(2))
    wait_until(lambda: bus.status_of("flaky").state is PluginState.DISABLED)
    flaky.broken = False
    bus.set_enabled("flaky", True)
    assert bus.status_of("flaky").state is PluginState.OK
    bus.publish_many(events(3))
    wait_until(lambda: len(flaky.events) == 3)
    assert bus.status_of("flaky").consecutive_failures == 0


def test_switching_off_and_on_while_running(bus_factory: Callable[..., EventBus]) -> None:
    rec = Recorder()
    bus = bus_factory([LoadedPlugin("rec", "test", rec, enabled=False)])
    bus.start()
    assert not bus.status_of("rec").running  # a plugin switched off gets no thread
    bus.publish_many(events(2))
    bus.set_enabled("rec", True)
    sent = events(3)
    bus.publish_many(sent)
    wait_until(lambda: len(rec.events) == 3)
    assert rec.events == sent and len(rec.started) == 1
    bus.set_enabled("rec", False)
    bus.publish_many(events(2))
    bus.stop()
    assert len(rec.events) == 3


def test_new_settings_restart_the_plugin_on_its_thread(
    bus_factory: Callable[..., EventBus], tmp_path: Path
) -> None:
    rec = Recorder()
    bus = bus_factory([LoadedPlugin("rec", "test", rec, settings={"n": 1})])
    bus.start(BusContext(data_dir=tmp_path, extras={"app": "x"}))
    assert bus.update_settings("rec", {"n": 2})
    wait_until(lambda: len(rec.started) == 2)
    first, second = rec.started
    assert first.settings == {"n": 1} and second.settings == {"n": 2}  # type: ignore[attr-defined]
    assert rec.stopped == 1
    assert second.data_dir == tmp_path / "plugin-data" / "rec" and second.data_dir.is_dir()  # type: ignore[attr-defined]
    assert second.extras == {"app": "x"}  # type: ignore[attr-defined]
    with pytest.raises(TypeError):
        second.settings["n"] = 3  # type: ignore[attr-defined, index]


def test_test_event_reaches_a_plugin_that_is_switched_off(bus_factory: Callable[..., EventBus]) -> None:
    rec = Recorder()
    bus = bus_factory([LoadedPlugin("rec", "test", rec, enabled=False)])
    assert not bus.send_test_event("rec")  # not running yet
    bus.start()
    assert bus.send_test_event("rec")
    wait_until(lambda: len(rec.events) == 1)
    assert rec.events[0].person == "Test Person" and rec.events[0].thumbnail
    with pytest.raises(KeyError, match="no plugin named 'nope'"):
        bus.send_test_event("nope")


def test_on_stop_failures_are_counted_and_stop_returns(bus_factory: Callable[..., EventBus]) -> None:
    class BadStop(Recorder):
        def on_stop(self) -> None:
            raise RuntimeError("cannot flush")

    bus = bus_factory([LoadedPlugin("x", "test", BadStop())])
    bus.start()
    assert bus.stop(timeout=5.0) == []
    status = bus.status_of("x")
    assert status.failures == 1 and status.last_error == "on_stop: RuntimeError: cannot flush"
    bus.publish(events(1)[0])  # after stop: ignored, no error
    with pytest.raises(RuntimeError, match="stopped"):
        bus.start()


def test_a_plugin_calling_sys_exit_does_not_end_anything(bus_factory: Callable[..., EventBus]) -> None:
    class Exits:
        def on_event(self, event: RecognitionEvent) -> None:
            raise SystemExit(3)

    rec = Recorder()
    bus = bus_factory([LoadedPlugin("exits", "test", Exits()), LoadedPlugin("rec", "test", rec)])
    bus.start()
    bus.publish_many(events(2))
    wait_until(lambda: bus.status_of("exits").failures == 2 and len(rec.events) == 2)
    assert bus.status_of("exits").running


def test_bus_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unique"):
        EventBus([LoadedPlugin("a", "t", Recorder()), LoadedPlugin("a", "t", Recorder())])
    with pytest.raises(ValueError, match="queue_size"):
        EventBus([], queue_size=0)
    with pytest.raises(ValueError, match="max_failures"):
        EventBus([], max_failures=0)
