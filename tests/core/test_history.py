"""The SQLite event history: append, query, CSV export, retention, corruption, threads, bus feed."""

from __future__ import annotations

import csv
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import paths
from core.events import EventBus, make_test_event
from core.history import CSV_COLUMNS, History
from core.types import EventKind, RecognitionEvent

DAY = 86400.0
THUMB = make_test_event().thumbnail


def ev(
    t: float, person: str | None, kind: EventKind = EventKind.RECOGNIZED, thumb: bytes = THUMB
) -> RecognitionEvent:
    return RecognitionEvent(
        kind=kind,
        time=t,
        source="cam 0",
        track_id=int(t) % 1000,
        person=person,
        similarity=0.61 if person else 0.2,
        box=(10.0, 20.5, 110.25, 140.0),
        thumbnail=thumb,
        frame_index=int(t) % 500,
        stream_time=t % 100,
    )


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "history.sqlite3")
    yield h
    h.close()


def test_default_path_and_wal(tmp_path: Path) -> None:
    with History() as h:
        assert h.path == paths.history_path()
        h.append(ev(1.0, "obama"))
    conn = sqlite3.connect(paths.history_path())
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_round_trip_keeps_every_field(history: History) -> None:
    event = ev(1_700_000_000.5, "obama")
    history.append(event)
    (back,) = history.query()
    assert back == event
    assert back.thumbnail == THUMB
    unknown = ev(1_700_000_001.0, None, EventKind.UNKNOWN, thumb=b"")
    history.append(unknown)
    assert history.query(kinds=["unknown"])[0] == unknown


def test_query_filters(history: History) -> None:
    now = time.time()
    history.extend(
        [
            ev(now - 3 * DAY, "obama"),
            ev(now - 2 * DAY, "biden"),
            ev(now - 2 * DAY + 5, "obama", EventKind.LEFT),
            ev(now - 1 * DAY, None, EventKind.UNKNOWN),
            ev(now, "obama"),
        ]
    )
    assert [e.time for e in history.query()] == sorted([e.time for e in history.query()], reverse=True)
    assert len(history.query(person="obama")) == 3
    assert len(history.query(since=now - 2 * DAY, until=now - DAY)) == 3
    assert len(history.query(person="obama", since=now - 2.5 * DAY, until=now - DAY)) == 1
    assert [e.kind for e in history.query(kinds=[EventKind.LEFT, "unknown"])] == ["unknown", "left"]
    assert history.query(kinds=[]) == []
    assert len(history.query(limit=2)) == 2
    oldest = history.query(limit=1, newest_first=False)[0]
    assert oldest.time == pytest.approx(now - 3 * DAY)
    assert history.query(thumbnails=False)[0].thumbnail == b""
    assert history.people() == ["biden", "obama"]
    assert history.count(person="obama") == 3 and history.count() == 5
    assert history.time_range() == (pytest.approx(now - 3 * DAY), pytest.approx(now))
    with pytest.raises(ValueError):
        history.query(kinds=["waved"])


def test_export_csv(history: History, tmp_path: Path) -> None:
    history.extend([ev(1000.0 + i, "obama" if i % 2 else "biden") for i in range(6)])
    out = tmp_path / "out" / "obama.csv"
    assert history.export_csv(out, person="obama") == 3
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["person"] for r in rows] == ["obama"] * 3
    assert rows[0]["time"] < rows[1]["time"] < rows[2]["time"]  # oldest first, ISO sorts by time
    assert rows[0]["box"] == "10.0 20.5 110.2 140.0" and rows[0]["similarity"] == "0.6100"
    with pytest.raises(IsADirectoryError):
        history.export_csv(tmp_path / "out")  # a folder: a clear error, and the folder is untouched
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["obama.csv"]
    assert history.export_csv(tmp_path / "none.csv", person="nobody") == 0
    assert (tmp_path / "none.csv").read_text().strip() == ",".join(CSV_COLUMNS)


def test_prune_by_age_and_size(history: History) -> None:
    now = time.time()
    history.extend([ev(now - 40 * DAY + i, "old") for i in range(5)])
    history.extend([ev(now - 100 + i, "new") for i in range(5)])
    assert history.prune(max_days=30) == 5
    assert history.people() == ["new"]

    big = bytes(range(256)) * 200  # 51 kB per event
    history.extend([ev(now + i, f"p{i:03d}", thumb=big) for i in range(80)])  # about 4 MB
    assert history.size_bytes() > 3 * 1024 * 1024
    size_before = history.path.stat().st_size
    removed = history.prune(max_mb=1)
    assert removed > 60
    assert history.size_bytes() <= 1024 * 1024
    newest = history.query(limit=1)[0]
    assert newest.person == "p079"  # the oldest go first
    assert history.path.stat().st_size < size_before  # space given back to the disk


def test_a_corrupt_database_is_moved_aside(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "history.sqlite3"
    with History(path) as h:
        h.append(ev(1.0, "obama"))
    # Overwrite the header and the first pages with garbage: no longer a database.
    data = bytearray(path.read_bytes())
    data[:4096] = b"\x07" * 4096
    path.write_bytes(bytes(data))
    with History(path) as h:
        assert h.recovered_from is not None and h.recovered_from.exists()
        assert h.recovered_from.name.startswith("history.sqlite3.corrupt-")
        assert h.query() == []
        h.append(ev(2.0, "biden"))
        assert h.people() == ["biden"]
    assert "could not be read" in caplog.text
    with History(path) as h:  # the new one opens cleanly
        assert h.recovered_from is None and h.people() == ["biden"]


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "history.sqlite3"
    path.write_text("these are my notes, not a database\n" * 100)
    with History(path) as h:
        assert h.recovered_from is not None
        assert h.recovered_from.read_text().startswith("these are my notes")  # nothing lost
        h.append(ev(1.0, "x"))


def test_reads_and_writes_from_many_threads(history: History) -> None:
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in range(50):
                history.append(ev(k * 1000 + i, f"w{k}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(50):
                history.query(limit=20)
                history.people()
        except BaseException as exc:  # pragma: no cover
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert history.count() == 150 and history.people() == ["w0", "w1", "w2"]


def test_the_bus_feeds_the_history(history: History) -> None:
    bus = EventBus([history.recorder(max_days=30, max_mb=100)])
    bus.start()
    sent = [ev(time.time() - i, f"p{i}") for i in range(20)]
    bus.publish_many(sent)
    assert bus.stop(timeout=10.0) == []
    assert history.count() == 20
    assert {e.person for e in history.query()} == {e.person for e in sent}
    status = bus.status_of("history")
    assert status.origin == "internal" and status.calls == 20 and status.failures == 0
