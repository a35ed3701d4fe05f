"""The built-in plugins, run through a real EventBus: attendance log, snapshot saver, webhook."""

from __future__ import annotations

import csv
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from core import paths
from core.builtin_plugins.attendance import COLUMNS, AttendanceLog
from core.builtin_plugins.snapshot import SnapshotSaver
from core.builtin_plugins.webhook import Webhook, validate_url
from core.events import EventBus, PluginState, make_test_event, plugin_report
from core.plugins import LoadedPlugin, discover_plugins, load_plugins, plugin_defaults
from core.settings import PluginSettings
from core.types import EventKind, RecognitionEvent
from tests._disks import tiny_disk


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def ev(
    kind: EventKind, person: str | None, t: float, stream: float, source: str = "cam", frame: bytes = b""
) -> RecognitionEvent:
    thumb = make_test_event().thumbnail
    return RecognitionEvent(
        kind,
        t,
        source,
        1,
        person,
        0.7,
        (1.0, 2.0, 3.0, 4.0),
        thumb,
        int(stream * 30),
        stream,
        frame_jpeg=frame,
    )


def run_plugin(
    plugin: object, name: str, settings: dict[str, Any], events: list[RecognitionEvent]
) -> EventBus:
    bus = EventBus([LoadedPlugin(name, "built-in", plugin, settings)])
    bus.start()
    bus.publish_many(events)
    assert bus.stop(timeout=10.0) == []
    return bus


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


# ------------------------------------------------------------------------------------- attendance


def test_attendance_one_row_per_person(tmp_path: Path) -> None:
    log = AttendanceLog()
    t0 = 1_750_000_000.0
    events = [
        ev(EventKind.RECOGNIZED, "obama", t0, 1.0),
        ev(EventKind.UNKNOWN, None, t0 + 1, 2.0),
        ev(EventKind.RECOGNIZED, "lin", t0 + 2, 3.0),
        ev(EventKind.LEFT, "obama", t0 + 9, 10.0),
        ev(EventKind.LEFT, "obama", t0 + 30, 31.0),  # a second visit whose "recognized" was in cooldown
        ev(EventKind.LEFT, "lin", t0 + 4, 5.0),
    ]
    bus = run_plugin(log, "attendance", {"folder": str(tmp_path / "att")}, events)
    assert bus.status_of("attendance").failures == 0
    assert log.path is not None and log.path.parent == tmp_path / "att"
    assert log.path.name.startswith("attendance-")
    rows = read_csv(log.path)
    assert tuple(rows[0]) == COLUMNS
    assert [r["person"] for r in rows] == ["obama", "lin"]
    obama, lin = rows
    assert datetime.fromisoformat(obama["first_seen"]).timestamp() == pytest.approx(t0)
    assert datetime.fromisoformat(obama["last_seen"]).timestamp() == pytest.approx(t0 + 30)
    assert float(obama["duration_s"]) == pytest.approx(30.0)
    assert float(lin["duration_s"]) == pytest.approx(2.0)
    # Nothing half-written is left next to it.
    assert [p.name for p in log.path.parent.iterdir()] == [log.path.name]


def test_attendance_default_folder_and_duration_across_sources() -> None:
    log = AttendanceLog()
    events = [
        ev(EventKind.RECOGNIZED, "obama", 100.0, 50.0, source="a.mp4"),
        ev(EventKind.LEFT, "obama", 160.0, 2.0, source="b.mp4"),  # another source: wall clock
    ]
    run_plugin(log, "attendance", {"folder": ""}, events)
    assert log.path is not None and log.path.parent == paths.data_dir() / "attendance"
    (row,) = read_csv(log.path)
    assert float(row["duration_s"]) == pytest.approx(60.0)


def test_attendance_folder_that_is_a_file_is_reported(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("keep me")
    bus = run_plugin(
        AttendanceLog(), "attendance", {"folder": str(blocker)}, [ev(EventKind.RECOGNIZED, "a", 1, 1)]
    )
    status = bus.status_of("attendance")
    assert status.state is PluginState.DISABLED and status.last_error.startswith("on_start: FileExistsError")
    assert blocker.read_text() == "keep me"


def test_attendance_on_a_full_disk_stays_on_and_writes_every_row_once_space_returns(tmp_path: Path) -> None:
    with tiny_disk(tmp_path / "disk", "1m") as disk:
        log = AttendanceLog()
        log.RETRY_FIRST_S, log.RETRY_MAX_S = 0.05, 0.2  # the test cannot wait a minute between retries
        folder = disk.root / "att"
        bus = EventBus([LoadedPlugin("attendance", "built-in", log, {"folder": str(folder)})], max_failures=2)
        bus.start()
        t0 = 1_750_000_000.0
        bus.publish(ev(EventKind.RECOGNIZED, "first", t0, 1.0))
        wait_until(lambda: log.path is not None and log.path.exists())
        assert log.path is not None
        disk.fill()
        people = [f"person {i:02d}" for i in range(12)]
        for i, person in enumerate(people):
            bus.publish(ev(EventKind.RECOGNIZED, person, t0 + 1 + i, 2.0 + i))
        bus.publish(ev(EventKind.LEFT, "first", t0 + 20, 21.0))
        wait_until(lambda: bus.status_of("attendance").calls == 14)
        status = bus.status_of("attendance")
        assert status.state is PluginState.DEGRADED and status.enabled, status
        # Many more failed writes than max_failures (2): still on, shown as degraded with the reason.
        wait_until(lambda: log.write_failures >= 6 and "13 changes" in bus.status_of("attendance").problem)
        status = bus.status_of("attendance")
        assert status.state is PluginState.DEGRADED, status
        assert status.failures == 0 and status.last_error == ""
        assert "No space left on device" in status.problem and "13 changes kept in memory" in status.problem
        (row,) = [r for r in plugin_report(bus) if r["name"] == "attendance"]
        assert row["state"] == "degraded" and row["problem"] == status.problem
        assert [r["person"] for r in read_csv(log.path)] == ["first"]  # the last complete file is kept

        disk.free()  # no new event: the retry on its timer writes the rows
        wait_until(lambda: bus.status_of("attendance").state is PluginState.OK)
        assert bus.status_of("attendance").problem == ""
        rows = read_csv(log.path)
        assert [r["person"] for r in rows] == ["first", *people]
        assert datetime.fromisoformat(rows[0]["last_seen"]).timestamp() == pytest.approx(t0 + 20)
        assert log.unwritten == 0
        assert bus.stop(timeout=10.0) == []
        assert bus.status_of("attendance").failures == 0
        assert [p.name for p in folder.iterdir()] == [log.path.name]  # no temporary file left behind


@pytest.mark.slow
def test_attendance_log_on_the_hamilton_clip(hamilton_clip: Path, demo_dir: Path, tmp_path: Path) -> None:
    pipeline_mod = pytest.importorskip("core.pipeline")
    from core.gallery import Gallery
    from core.settings import Settings

    gallery_dir = tmp_path / "gallery"
    shutil.copytree(demo_dir / "knn_examples" / "train" / "obama", gallery_dir / "obama")
    (gallery_dir / "lin-manuel-miranda").mkdir()
    shutil.copy(demo_dir / "lin-manuel-miranda.png", gallery_dir / "lin-manuel-miranda")

    settings = Settings()
    pipeline = pipeline_mod.Pipeline(settings, source=str(hamilton_clip))
    gallery = Gallery(
        gallery_dir, pipeline.embedder, pipeline.detector, cache_path=tmp_path / "cache.sqlite3"
    )
    pipeline = pipeline_mod.Pipeline(
        settings, gallery, source=str(hamilton_clip), detector=pipeline.detector, embedder=pipeline.embedder
    )
    pipeline.sync_gallery()

    found = discover_plugins(tmp_path / "no-plugins", entry_points=False)
    plugins = load_plugins(found, PluginSettings(options={"attendance": {"folder": str(tmp_path / "att")}}))
    assert [p.name for p in plugins if p.enabled] == ["attendance"]
    bus = EventBus(plugins)
    bus.start()
    cap = cv2.VideoCapture(str(hamilton_clip))
    fps = cap.get(cv2.CAP_PROP_FPS)
    all_events: list[RecognitionEvent] = []
    index = 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        result = pipeline.process(frame, index, index / fps)
        all_events += result.events
        bus.publish_many(result.events)
        index += 1
    cap.release()
    end = pipeline.flush_events()
    all_events += end
    bus.publish_many(end)
    assert bus.stop(timeout=10.0) == []
    clip_s = index / fps

    recognized = [e.person for e in all_events if e.kind is EventKind.RECOGNIZED]
    left = [e.person for e in all_events if e.kind is EventKind.LEFT]
    assert sorted(set(recognized)) == ["lin-manuel-miranda", "obama"]
    assert sorted(recognized) == sorted(set(recognized)) and sorted(left) == sorted(recognized)

    attendance = next(p.plugin for p in plugins if p.name == "attendance")
    rows = read_csv(attendance.path)  # type: ignore[attr-defined]
    assert sorted(r["person"] for r in rows) == ["lin-manuel-miranda", "obama"]
    for row in rows:
        first = datetime.fromisoformat(row["first_seen"])
        last = datetime.fromisoformat(row["last_seen"])
        assert first <= last
        assert 0.0 < float(row["duration_s"]) <= clip_s


# --------------------------------------------------------------------------------------- snapshot


def test_snapshot_saves_faces_and_frames_with_retention(tmp_path: Path, demo_dir: Path) -> None:
    frame = cv2.imread(str(demo_dir / "obama-480p.jpg"))
    ok, buf = cv2.imencode(".jpg", frame)
    full = buf.tobytes()
    folder = tmp_path / "snaps"
    saver = SnapshotSaver()
    events = [ev(EventKind.RECOGNIZED, f"p/../{i}", 1_750_000_000.0 + i, i, frame=full) for i in range(5)]
    events.append(ev(EventKind.LEFT, "p", 1_750_000_100.0, 100.0))  # not a kind it saves
    settings = {
        "mode": "frame",
        "folder": str(folder),
        "kinds": "recognized",
        "keep_count": 3,
        "keep_days": 0,
    }
    bus = run_plugin(saver, "snapshot", settings, events)
    assert bus.status_of("snapshot").failures == 0
    files = sorted(folder.iterdir())
    assert len(files) == 3 and saver.saved == 5  # the two oldest went
    assert [f.name.split("_")[-1] for f in files] == ["t1.jpg"] * 3
    assert "recognized_p_.._2" in files[0].name and "/" not in files[0].name
    image = cv2.imread(str(files[0]))
    assert image.shape == frame.shape

    # Face mode saves the thumbnail; keep_days removes old files.
    face_folder = tmp_path / "faces"
    face_folder.mkdir()
    stale = face_folder / "20000101-000000-000_recognized_old_t1.jpg"
    stale.write_bytes(b"x")
    os.utime(stale, (time.time() - 10 * 86400, time.time() - 10 * 86400))
    saver = SnapshotSaver()
    settings = {"mode": "face", "folder": str(face_folder), "kinds": "recognized,unknown", "keep_days": 5}
    run_plugin(saver, "snapshot", settings, [ev(EventKind.UNKNOWN, None, 1_750_000_000.0, 1.0, frame=full)])
    (saved,) = face_folder.iterdir()
    assert "_unknown_unknown_" in saved.name
    assert max(cv2.imread(str(saved)).shape[:2]) <= 96


def test_snapshot_frame_mode_without_a_frame_saves_the_face(tmp_path: Path) -> None:
    saver = SnapshotSaver()
    run_plugin(
        saver,
        "snapshot",
        {"mode": "frame", "folder": str(tmp_path)},
        [ev(EventKind.RECOGNIZED, "a", 1.0, 1.0)],
    )
    (saved,) = tmp_path.iterdir()
    assert saved.read_bytes() == make_test_event().thumbnail


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"mode": "movie"}, "snapshot mode must be 'face' or 'frame'"),
        ({"kinds": "recognized,waved"}, "'waved' is not an event kind"),
        ({"keep_count": -1}, "keep_count and keep_days"),
    ],
)
def test_snapshot_bad_settings_are_reported(tmp_path: Path, settings: dict[str, Any], message: str) -> None:
    bus = run_plugin(SnapshotSaver(), "snapshot", {"folder": str(tmp_path), **settings}, [])
    status = bus.status_of("snapshot")
    assert status.state is PluginState.DISABLED and message in status.last_error


# ---------------------------------------------------------------------------------------- webhook


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        server: Any = self.server
        server.received.append((self.path, self.headers.get("Content-Type"), json.loads(body)))
        status = server.answers.pop(0) if server.answers else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet test output
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadingHTTPServer]:
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)  # loopback must not go through a proxy
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.received = []  # type: ignore[attr-defined]
    httpd.answers = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_webhook_posts_then_gives_up_cleanly_when_the_server_is_gone(server: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{server.server_port}/hook?k=1"
    hook = Webhook()
    bus = EventBus(
        [
            LoadedPlugin(
                "webhook",
                "built-in",
                hook,
                {**plugin_defaults(Webhook), "url": url, "retries": 2, "backoff_s": 0.05},
            )
        ],
        max_failures=3,
    )
    bus.start()
    sent = [ev(EventKind.RECOGNIZED, "obama", 1.0, 1.0), ev(EventKind.LEFT, "obama", 5.0, 5.0)]
    server.answers.append(503)  # type: ignore[attr-defined]  # the first attempt fails: retried
    bus.publish_many(sent)
    wait_until(lambda: hook.sent == 2)
    received = server.received  # type: ignore[attr-defined]
    assert len(received) == 3
    assert all(path == "/hook?k=1" and ctype == "application/json" for path, ctype, _ in received)
    assert [body for _, _, body in received[1:]] == [e.to_dict() for e in sent]
    assert "thumbnail_jpeg_base64" not in received[1][2]
    assert bus.status_of("webhook").failures == 0

    server.shutdown()
    server.server_close()
    bus.publish(ev(EventKind.RECOGNIZED, "lin", 9.0, 9.0))
    wait_until(lambda: bus.status_of("webhook").failures == 1)
    status = bus.status_of("webhook")
    assert hook.failed == 1 and hook.sent == 2
    assert status.state is PluginState.FAILED
    assert "failed after 3 attempt(s)" in status.last_error and "Connection refused" in status.last_error
    assert bus.stop(timeout=5.0) == []


def test_webhook_does_not_retry_a_client_error_and_can_send_thumbnails(server: ThreadingHTTPServer) -> None:
    url = f"http://127.0.0.1:{server.server_port}/"
    hook = Webhook()
    settings = {
        **plugin_defaults(Webhook),
        "url": url,
        "backoff_s": 0.01,
        "include_thumbnail": True,
        "kinds": "left",
    }
    server.answers.append(404)  # type: ignore[attr-defined]
    bus = run_plugin(
        hook,
        "webhook",
        settings,
        [ev(EventKind.RECOGNIZED, "a", 1.0, 1.0), ev(EventKind.LEFT, "a", 2.0, 2.0)],
    )
    assert len(server.received) == 1  # type: ignore[attr-defined]  # only "left", and no retry on 404
    assert "HTTP 404" in bus.status_of("webhook").last_error
    assert server.received[0][2]["thumbnail_jpeg_base64"]  # type: ignore[attr-defined]


def test_webhook_sends_nothing_without_a_url(server: ThreadingHTTPServer) -> None:
    hook = Webhook()
    bus = run_plugin(hook, "webhook", plugin_defaults(Webhook), [ev(EventKind.RECOGNIZED, "a", 1.0, 1.0)])
    assert server.received == [] and hook.sent == 0  # type: ignore[attr-defined]
    assert bus.status_of("webhook").state is PluginState.OK


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/x",
        "file:///etc/passwd",
        "http://",
        "example.com/hook",
        "http://a b/",
        "http://h:port/",
    ],
)
def test_webhook_url_is_validated(url: str) -> None:
    with pytest.raises(ValueError, match="webhook URL"):
        validate_url(url)
    bus = run_plugin(Webhook(), "webhook", {**plugin_defaults(Webhook), "url": url}, [])
    status = bus.status_of("webhook")
    assert status.state is PluginState.DISABLED and "webhook URL" in status.last_error


def test_webhook_accepts_http_and_https() -> None:
    assert validate_url(" https://hooks.example.com:8443/a?b=c ") == "https://hooks.example.com:8443/a?b=c"
    assert validate_url("http://127.0.0.1:9/x") == "http://127.0.0.1:9/x"


def test_builtin_frame_is_decodable() -> None:
    # The synthetic test event (the Plugins dialog's button) carries a real frame and thumbnail.
    event = make_test_event()
    for data in (event.thumbnail, event.frame_jpeg):
        assert cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None
