"""Stations as separate processes on one real PostgreSQL server, through the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import pytest

from cli.main import main
from core.detection import create_detector
from core.embedding import create_embedder
from core.store.shared_gallery import SharedGallery
from core.store.shared_history import SharedHistory
from tests import _postgres as tpg

pytest.importorskip("psycopg")

REPO = Path(__file__).resolve().parents[2]


def _visits_clip(clip: Path, out: Path) -> Path:
    """Frames 82-127 of the demo clip (Lin-Manuel Miranda alone, facing the camera), then 20 empty
    frames: looped, every pass is a new visit (he comes, he leaves), so events keep coming."""
    cap = cv2.VideoCapture(str(clip))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    frames = []
    for index in range(128):
        ok, frame = cap.read()
        assert ok
        if index >= 82:
            frames.append(frame)
    cap.release()
    frames += [frames[0] * 0] * 20
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter.fourcc(*"mp4v"), fps, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.release()
    return out


def _events(path: Path) -> list[dict]:
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    # The last line may be half written while the station runs.
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            pass
    return out


def _station(args: list[str], home: Path) -> subprocess.Popen:
    # PYTHONFAULTHANDLER: a station that does not stop is sent SIGABRT (``_stop``) and dumps its threads.
    env = {**os.environ, "GHOSTFACE_HOME": str(home), "PYTHONPATH": str(REPO), "PYTHONFAULTHANDLER": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Ctrl-C as at a terminal: a test run started in the background (``make test &``, some CI runners)
        # hands its children SIGINT ignored, and Python keeps it so; the station would never see the Ctrl-C.
        preexec_fn=_default_sigint,
    )


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _stop(proc: subprocess.Popen, timeout: float = 60) -> tuple[str, str]:
    """Ctrl-C to a station; its output once it has ended. One that hangs fails with its threads' stacks."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"the station did not stop within {timeout} s of Ctrl-C:\n{err[-6000:]}") from None


def _until(condition, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the station ended early: {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.05)


def _outbox(path: Path) -> int:
    """Events waiting in a station's outbox (read while the station runs)."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])
    except sqlite3.Error:
        return 0


def _server_events(url: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT event_id, station, kind, person, frame_index, time FROM events"
        ).fetchall()


@pytest.mark.slow
def test_two_stations_enrolment_reaches_b_within_two_seconds_and_no_event_is_lost_when_the_server_stops(
    pg_server, hamilton_clip: Path, demo_dir: Path, tmp_path: Path
) -> None:
    """Station A enrols, station B (another process, recognizing the demo clip) names the person within
    2 s; then the server stops mid-run: B goes on recognizing, its events wait, and once the server is
    back every event arrives exactly once."""
    db = tpg.fresh_database(pg_server)
    admin = pg_server.url(tpg.ADMIN_USER, tpg.ADMIN_PASSWORD, db)
    station = pg_server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db)
    clip = _visits_clip(hamilton_clip, tmp_path / "lin.mp4")
    # Short timings: every pass of the looped clip makes a new visit, hence new events.
    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps({"events": {"cooldown_s": 0, "left_after_s": 0.5, "unknown_after_s": 0.5}})
    )
    events_b = tmp_path / "b.jsonl"
    outbox = tmp_path / "home-b" / "data" / "outbox-B.sqlite3"
    b = _station(
        [
            "run",
            "--source",
            str(clip),
            "--loop",
            "--max-frames",
            "20000",
            "--store",
            station,
            "--station",
            "B",
            "--settings",
            str(settings),
            "--events",
            str(events_b),
            "--json",
        ],
        tmp_path / "home-b",
    )
    try:
        # Station B is running with an empty gallery: the face in view is unknown.
        _until(lambda: any(e["kind"] == "unknown" for e in _events(events_b)), 180, b)
        with SharedGallery(
            admin, create_embedder("sface"), create_detector("yunet"), station="A", listen=False
        ) as a:
            assert a.add_photos("Lin-Manuel Miranda", [demo_dir / "lin-manuel-miranda.png"]).added == 1
            enrolled = time.time()
        _until(lambda: any(e["person"] == "Lin-Manuel Miranda" for e in _events(events_b)), 30, b)
        named = next(e for e in _events(events_b) if e["person"] == "Lin-Manuel Miranda")
        assert named["kind"] == "recognized"
        delay = named["wall_time"] - enrolled
        print(f"enrolment on A to recognition on B: {delay:.2f} s")  # BENCHMARKS.md quotes it (pytest -s)
        assert delay < 2.0, delay

        _until(lambda: len(_server_events(station)) >= len(_events(events_b)), 30, b)
        pg_server.stop()
        try:
            before = len(_events(events_b))
            # Recognition goes on, and the events wait in B's outbox on its own disk.
            _until(lambda: len(_events(events_b)) >= before + 2 and _outbox(outbox) >= 2, 90, b)
        finally:
            pg_server.start()
        during = len(_events(events_b))
        _until(lambda: len(_events(events_b)) >= during + 2, 90, b)
        # The server is back: the outbox drains while the station runs on.
        _until(lambda: len(_server_events(station)) >= len(_events(events_b)) - 2, 60, b)
    finally:
        out, err = _stop(b)  # Ctrl-C: the station stops and delivers its outbox
    summary = json.loads(out.splitlines()[-1])
    assert summary["interrupted"] and summary["store"]["station"] == "B", err
    assert summary["store"]["waiting"] == 0 and _outbox(outbox) == 0
    # Every event B made is on the server, exactly once, with its station.
    made = _events(events_b)
    stored = _server_events(station)
    assert len({row[0] for row in stored}) == len(stored) == len(made)
    assert {row[1] for row in stored} == {"B"}
    assert sorted((e["kind"], e["frame"], round(e["wall_time"], 3)) for e in made) == sorted(
        (kind, frame, round(t, 3)) for _, _, kind, _, frame, t in stored
    )
    with SharedHistory(station, station="checker", outbox_path=tmp_path / "c.sqlite3") as history:
        assert "Lin-Manuel Miranda" in {r.event.person for r in history.query_stations(limit=None)}


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def test_a_wrong_password_or_an_unreachable_server_is_one_clear_line(
    pg_server, demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tpg.fresh_database(pg_server)
    wrong = pg_server.url(tpg.STATION_USER, "not-the-password", db)
    assert main(["store", "status", "--store", wrong]) == 1
    line = _one_line_error(capsys)
    assert line.startswith("error: cannot connect to the shared store gf_station@127.0.0.1")
    assert 'password authentication failed for user "gf_station"' in line
    assert "not-the-password" not in line
    unreachable = f"postgresql://someone@127.0.0.1:{tpg._free_port()}/ghostface"
    assert main(["run", "--source", str(demo_dir / "obama.jpg"), "--store", unreachable]) == 1
    line = _one_line_error(capsys)
    assert "cannot connect to the shared store someone@127.0.0.1" in line and "Connection refused" in line
    # sslmode is handed to libpq as it is: this test server speaks no TLS, so "require" is refused.
    tls = pg_server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db) + "?sslmode=require"
    assert main(["store", "status", "--store", tls]) == 1
    assert "server does not support SSL, but SSL was required" in _one_line_error(capsys)


def test_store_init_migrate_push_and_pull_from_the_command_line(
    pg_server, hamilton_gallery: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import psycopg

    with psycopg.connect(pg_server.url(db="postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE gf_cli_init")
    url = pg_server.url(db="gf_cli_init")
    assert main(["store", "status", "--store", url]) == 1
    assert "no GhostFace schema yet: run 'ghostface store init'" in capsys.readouterr().err
    assert main(["store", "init", "--create-roles", "--store", url, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["applied"] == [1] and summary["roles"] is True
    assert main(["store", "migrate", "--store", url, "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["applied"] == []
    assert main(["store", "push", "--store", url, "--gallery", str(hamilton_gallery)]) == 0
    assert "2 people created, 3 photos copied, 0 already there" in capsys.readouterr().out
    assert main(["store", "pull", "--store", url, "--gallery", str(tmp_path / "back"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["photos"] == 3
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == ["Barack Obama", "Lin-Manuel Miranda"]


def test_enroll_needs_the_admin_role(pg_server, demo_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tpg.fresh_database(pg_server)
    photo = str(demo_dir / "biden.jpg")
    station = pg_server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db)
    assert main(["enroll", "--store", station, "--person", "Joe Biden", photo]) == 1
    line = _one_line_error(capsys)
    assert "may not enrol photos: changing the shared gallery needs the ghostface_admin role" in line
    admin = pg_server.url(tpg.ADMIN_USER, tpg.ADMIN_PASSWORD, db)
    assert main(["enroll", "--store", admin, "--station", "office", "--person", "Joe Biden", photo]) == 0
    assert "Joe Biden: 1 of 1 photos enrolled" in capsys.readouterr().out


@pytest.mark.slow
def test_ctrl_c_stops_a_station_within_seconds_while_its_server_does_not_answer(
    pg_server, hamilton_clip: Path, tmp_path: Path
) -> None:
    """A server that takes the events but never answers (the events table locked) must not hold a
    station: Ctrl-C ends it within seconds, and the undelivered events stay in its outbox."""
    import psycopg

    db = tpg.fresh_database(pg_server)
    station = pg_server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db)
    clip = _visits_clip(hamilton_clip, tmp_path / "lin.mp4")
    settings = tmp_path / "settings.json"
    settings.write_text(
        json.dumps({"events": {"cooldown_s": 0, "left_after_s": 0.5, "unknown_after_s": 0.5}})
    )
    events = tmp_path / "c.jsonl"
    outbox = tmp_path / "home-c" / "data" / "outbox-C.sqlite3"
    args = ["run", "--source", str(clip), "--loop", "--max-frames", "20000", "--store", station]
    args += ["--station", "C", "--settings", str(settings), "--events", str(events), "--json"]
    c = _station(args, tmp_path / "home-c")
    locker = psycopg.connect(pg_server.url(db=db))
    try:
        _until(lambda: len(_server_events(station)) >= 1, 180, c)
        locker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        # The station's delivery now waits on the server while its events pile up in the outbox.
        _until(lambda: _outbox(outbox) >= 2, 90, c)
    finally:
        start = time.monotonic()
        c.send_signal(signal.SIGINT)
        try:
            out, err = c.communicate(timeout=60)
        finally:
            c.kill()
            locker.rollback()
            locker.close()
    took = time.monotonic() - start
    print(f"Ctrl-C to exit, the server not answering: {took:.1f} s")  # pytest -s
    summary = json.loads(out.splitlines()[-1])
    assert summary["interrupted"], err
    assert took < 20.0, (took, err)
    # Nothing lost: what the server did not take waits in the outbox for the next start.
    waiting = summary["store"]["waiting"]
    assert waiting >= 2 and _outbox(outbox) == waiting
    assert len(_server_events(station)) + waiting == len(_events(events))
