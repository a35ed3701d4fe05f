"""The shared store against a real PostgreSQL server (tests/_postgres.py starts one per session)."""

from __future__ import annotations

import json
import shutil
import threading
import time
import uuid

import numpy as np
import pytest

from core.detection import create_detector
from core.embedding import create_embedder
from core.errors import GalleryError
from core.store import StoreError
from core.store import postgres as pg
from core.store.shared_gallery import SharedGallery
from core.store.shared_history import SharedHistory
from core.store.transfer import pull_gallery, push_gallery, push_history
from core.types import EventKind, RecognitionEvent
from tests import _postgres as tpg

pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def models() -> tuple:
    return create_detector("yunet", max_side=640), create_embedder("sface")


@pytest.fixture
def db(pg_server: tpg.PgServer) -> str:
    """A fresh database with the schema and the two roles; its name."""
    return tpg.fresh_database(pg_server)


def admin_url(server: tpg.PgServer, db: str) -> str:
    return server.url(tpg.ADMIN_USER, tpg.ADMIN_PASSWORD, db)


def station_url(server: tpg.PgServer, db: str) -> str:
    return server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db)


def _wait(condition, timeout: float) -> float:
    """Seconds until ``condition()`` held; fails after ``timeout``."""
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        time.sleep(0.02)
    return time.monotonic() - start


def _event(i: int, person: str | None = "Ada", kind: EventKind = EventKind.RECOGNIZED) -> RecognitionEvent:
    return RecognitionEvent(
        kind=kind,
        time=1_700_000_000.0 + i,
        source="clip.mp4",
        track_id=i,
        person=person if kind is not EventKind.UNKNOWN else None,
        similarity=0.5,
        box=(1.0, 2.0, 30.0, 40.0),
        thumbnail=b"\xff\xd8jpeg" + bytes([i % 256]),
        frame_index=i,
        stream_time=i / 30,
        visit_id=f"visit-{i}",
        source_label="Front door",
    )


def test_migrations_are_versioned_and_a_newer_schema_is_refused(pg_server, models) -> None:
    name = tpg.fresh_database(pg_server, roles=False)
    url = pg_server.url(db=name)
    with pg.connect(url) as conn:
        assert pg.apply_migrations(conn) == []  # applied once by fresh_database; twice adds nothing
        assert pg.check_schema(conn) == pg.SCHEMA_VERSION
        rows = conn.execute("SELECT version, name FROM schema_version").fetchall()
        assert rows == [(1, "initial")]
        conn.execute(
            "INSERT INTO schema_version(version, name) VALUES (%s, 'future')", (pg.SCHEMA_VERSION + 1,)
        )
        conn.commit()
    detector, embedder = models
    with pytest.raises(StoreError, match=r"newer than this station's .*update GhostFace"):
        SharedGallery(url, embedder, detector, station="A")
    with pytest.raises(StoreError, match="newer than this GhostFace"), pg.connect(url) as conn:
        pg.apply_migrations(conn)


def test_a_newer_migration_is_applied_once_in_order(pg_server, monkeypatch) -> None:
    name = tpg.fresh_database(pg_server, roles=False)
    shipped = pg.migrations()
    second = pg.Migration(2, "station_notes", "ALTER TABLE people ADD COLUMN notes text NOT NULL DEFAULT '';")
    monkeypatch.setattr(pg, "migrations", lambda: [*shipped, second])
    monkeypatch.setattr(pg, "SCHEMA_VERSION", 2)
    with pg.connect(pg_server.url(db=name)) as conn:
        with pytest.raises(StoreError, match="older than this station's 2: run 'ghostface store migrate'"):
            pg.check_schema(conn)
        assert pg.apply_migrations(conn) == [2]
        assert pg.apply_migrations(conn) == []
        assert pg.check_schema(conn) == 2
        assert conn.execute("SELECT notes FROM people").fetchall() == []


def test_both_stores_satisfy_the_same_interfaces(pg_server, db, models, tmp_path) -> None:
    from core.gallery import Gallery
    from core.history import History
    from core.store import EventStore, GalleryStore

    detector, embedder = models
    with Gallery(tmp_path / "g", embedder, detector, cache_path=tmp_path / "c.sqlite3") as folder:
        assert isinstance(folder, GalleryStore)
    with SharedGallery(station_url(pg_server, db), embedder, detector, station="A", listen=False) as shared:
        assert isinstance(shared, GalleryStore)
    with History(tmp_path / "h.sqlite3") as local:
        assert isinstance(local, EventStore)
    with SharedHistory(station_url(pg_server, db), station="A", outbox_path=tmp_path / "o.sqlite3") as site:
        assert isinstance(site, EventStore)


def test_a_failing_migration_is_rolled_back_whole(pg_server, monkeypatch) -> None:
    with pg.connect(pg_server.url(db="postgres"), autocommit=True) as conn:
        conn.execute("CREATE DATABASE gf_broken_migration")
    bad = pg.Migration(1, "initial", "CREATE TABLE people (id int); SELECT no_such_function();")
    monkeypatch.setattr(pg, "migrations", lambda: [bad])
    with pg.connect(pg_server.url(db="gf_broken_migration")) as conn:
        with pytest.raises(StoreError, match="0001_initial failed and was rolled back"):
            pg.apply_migrations(conn)
        conn.rollback()
        assert conn.execute("SELECT to_regclass('people')").fetchone()[0] is None
        assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == 0


def test_an_enrolment_on_one_station_reaches_another_within_two_seconds(
    pg_server, db, demo_dir, models
) -> None:
    detector, embedder = models
    with (
        SharedGallery(admin_url(pg_server, db), embedder, detector, station="A") as a,
        SharedGallery(station_url(pg_server, db), embedder, detector, station="B") as b,
    ):
        b.sync()
        assert b.snapshot().labels == ()
        report = a.add_photos("Lin-Manuel Miranda", [demo_dir / "lin-manuel-miranda.png"])
        assert report.added == 1
        took = _wait(lambda: b.snapshot().labels == ("Lin-Manuel Miranda",), 2.0)
        assert took < 2.0
        np.testing.assert_allclose(b.snapshot().matrix, a.snapshot().matrix)
        a.rename_person("Lin-Manuel Miranda", "Lin Manuel")
        _wait(lambda: b.snapshot().labels == ("Lin Manuel",), 2.0)
        a.delete_person("Lin Manuel")
        _wait(lambda: b.snapshot().labels == (), 2.0)
        assert b.people() == []
    # Deleting keeps the photo on the server.
    with pg.connect(admin_url(pg_server, db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 1


def test_each_photo_is_embedded_once_for_the_whole_site(pg_server, db, demo_dir, tmp_path) -> None:
    root = tmp_path / "gallery"
    shutil.copytree(demo_dir / "knn_examples" / "train", root)
    with pg.connect(admin_url(pg_server, db)) as conn:
        pushed = push_gallery(conn, root, station="admin")
    assert pushed.photos >= 5 and pushed.people == 5
    reports: dict[str, object] = {}
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def station(name: str) -> None:
        try:
            # Each station its own models, as two computers have.
            detector, embedder = create_detector("yunet", max_side=640), create_embedder("sface")
            with SharedGallery(
                station_url(pg_server, db), embedder, detector, station=name, listen=False
            ) as g:
                barrier.wait()
                reports[name] = g.sync()
                reports[name + " labels"] = g.snapshot().labels
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=station, args=(n,)) for n in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    with pg.connect(admin_url(pg_server, db)) as conn:
        distinct = conn.execute("SELECT COUNT(DISTINCT sha256) FROM photos").fetchone()[0]
        stored = conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    assert stored == distinct
    # Between them the two stations embedded each photo once: no photo was embedded by both.
    assert reports["A"].embedded + reports["B"].embedded == distinct
    assert reports["A labels"] == reports["B labels"]
    assert set(reports["A labels"]) == {"alex_lacamoire", "biden", "kit_harington", "obama", "rose_leslie"}


def test_a_station_role_cannot_change_the_gallery(pg_server, db, demo_dir, models, tmp_path) -> None:
    detector, embedder = models
    with SharedGallery(admin_url(pg_server, db), embedder, detector, station="office") as admin:
        admin.add_photos("Barack Obama", [demo_dir / "obama.jpg"])
    with SharedGallery(station_url(pg_server, db), embedder, detector, station="door") as door:
        for attempt in (
            lambda: door.add_photos("Joe Biden", [demo_dir / "biden.jpg"]),
            lambda: door.rename_person("Barack Obama", "Obama"),
            lambda: door.delete_person("Barack Obama"),
            lambda: door.add_person("Nobody"),
        ):
            with pytest.raises(StoreError, match="may not .* needs the ghostface_admin role"):
                attempt()
        assert [p.name for p in door.people()] == ["Barack Obama"]
        # What a station may do: read the gallery and write embeddings.
        assert door.sync().usable == 1
    (tmp_path / "g" / "Joe Biden").mkdir(parents=True)
    shutil.copy(demo_dir / "biden.jpg", tmp_path / "g" / "Joe Biden")
    with (
        pytest.raises(StoreError, match="needs the ghostface_admin role"),
        pg.connect(station_url(pg_server, db)) as conn,
    ):
        push_gallery(conn, tmp_path / "g", station="door")


def _race(first, second) -> dict[str, str]:
    """Run two stations' changes at the same moment; "ok" or the error message of each."""
    barrier = threading.Barrier(2)
    outcome: dict[str, str] = {}

    def act(key, change):
        barrier.wait()
        try:
            change()
            outcome[key] = "ok"
        except GalleryError as exc:
            outcome[key] = str(exc)

    threads = [threading.Thread(target=act, args=(k, c)) for k, c in (("A", first), ("B", second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return outcome


def test_two_stations_changing_one_person_at_once_one_wins_and_no_photo_is_lost(
    pg_server, db, demo_dir, models
) -> None:
    detector, embedder = models
    with (
        SharedGallery(admin_url(pg_server, db), embedder, detector, station="A") as a,
        SharedGallery(admin_url(pg_server, db), embedder, detector, station="B") as b,
    ):
        a.add_photos("Barack Obama", [demo_dir / "obama.jpg", demo_dir / "obama2.jpg"])
        renames = _race(
            lambda: a.rename_person("Barack Obama", "Obama A"),
            lambda: b.rename_person("Barack Obama", "Obama B"),
        )
        name = a.people()[0].name
        deletes = _race(lambda: a.rename_person(name, "Barack"), lambda: b.delete_person(name))
        for outcome in (renames, deletes):
            results = sorted(outcome.values(), key=lambda v: v != "ok")
            assert results[0] == "ok", outcome
            assert "no longer in the shared gallery: another station renamed or deleted" in results[1], (
                outcome
            )
        assert len(a.people()) == (1 if deletes["A"] == "ok" else 0)
    with pg.connect(admin_url(pg_server, db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM photos").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM people").fetchone()[0] == 1


def test_events_wait_in_the_outbox_while_the_server_is_down_and_arrive_once(pg_server, db, tmp_path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    history = SharedHistory(station_url(pg_server, db), station="Front", outbox_path=outbox, retry_s=0.2)
    try:
        history.record([_event(i) for i in range(20)])
        assert history.flush_pending()
        pg_server.stop()
        try:
            start = time.monotonic()
            for i in range(20, 50):
                history.record([_event(i)])  # recognition goes on: recording never waits for the server
            assert time.monotonic() - start < 1.0
            _wait(lambda: history.problem is not None, 10.0)
            assert "cannot be reached" in history.problem and history.pending == 30
        finally:
            pg_server.start()
        # The outbox empties a moment before the delivery says the server is back: wait for both.
        _wait(lambda: history.pending == 0 and history.problem is None, 20.0)
        rows = history.query_stations(limit=None, newest_first=False)
        assert [r.event.frame_index for r in rows] == list(range(50))
        assert {r.station for r in rows} == {"Front"}
        assert rows[3].event.visit_id == "visit-3" and rows[3].event.thumbnail == _event(3).thumbnail
    finally:
        history.close()


def test_closing_while_the_server_does_not_answer_ends_within_seconds_and_keeps_the_events(
    pg_server, db, tmp_path
) -> None:
    """A server that takes the connection but does not answer (here: the events table locked) must not
    hold a closing station: close() gives up on the delivery within seconds and the events stay in the
    outbox for the next start."""
    import psycopg

    outbox = tmp_path / "o.sqlite3"
    history = SharedHistory(station_url(pg_server, db), station="Door", outbox_path=outbox, retry_s=0.2)
    history.record([_event(i) for i in range(3)])
    assert history.flush_pending()
    locker = psycopg.connect(admin_url(pg_server, db))
    closer = None
    try:
        locker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        history.record([_event(i) for i in range(3, 6)])
        # The outbox thread's INSERT now waits on the server.
        _wait(lambda: _blocked_inserts(pg_server, db) > 0, 20.0)
        start = time.monotonic()
        closer = threading.Thread(target=history.close, daemon=True)
        closer.start()
        closer.join(30.0)
        took = time.monotonic() - start
        assert not closer.is_alive(), "close() waits for a server that does not answer"
        assert took < 10.0, took
        assert history.left_in_outbox == 3
    finally:
        locker.rollback()
        locker.close()
        if closer is not None:
            closer.join(30.0)
    # Nothing lost: the next start delivers them, once.
    again = SharedHistory(station_url(pg_server, db), station="Door", outbox_path=outbox)
    try:
        assert again.flush_pending(timeout_s=20.0)
        assert sorted(e.frame_index for e in again.query(limit=None)) == list(range(6))
    finally:
        again.close()


def _blocked_inserts(server: tpg.PgServer, db: str) -> int:
    import psycopg

    with psycopg.connect(server.url(db=db)) as conn:
        row = conn.execute(
            "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
            " AND query LIKE 'INSERT INTO events%%'",
            (db,),
        ).fetchone()
    return int(row[0])


def test_a_delivery_repeated_after_a_crash_writes_nothing_twice(pg_server, db, tmp_path) -> None:
    history = SharedHistory(station_url(pg_server, db), station="Back", outbox_path=tmp_path / "o.sqlite3")
    try:
        history._stop.set()  # no background delivery: the test delivers by hand
        history._wake.set()
        history._thread.join(5)
        history.record([_event(i) for i in range(5)])
        batch = history._outbox.execute("SELECT seq, event_id, payload, thumbnail FROM outbox").fetchall()
        history._send(batch)  # delivered, then "crashed" before the outbox was emptied
        assert history.pending == 5
        assert history.flush_pending()
        assert history.count() == 5
    finally:
        history.close()


def test_both_stations_events_in_one_history_and_csv(pg_server, db, tmp_path) -> None:
    url = station_url(pg_server, db)
    a = SharedHistory(url, station="Front door", outbox_path=tmp_path / "a.sqlite3")
    b = SharedHistory(url, station="Back door", outbox_path=tmp_path / "b.sqlite3")
    try:
        a.record([_event(0, "Ada"), _event(2, "Ada", EventKind.LEFT)])
        b.record([_event(1, "Grace"), _event(3, kind=EventKind.UNKNOWN)])
        assert a.flush_pending() and b.flush_pending()
        for view in (a, b):
            rows = view.query_stations(newest_first=False)
            assert [(r.station, r.event.person) for r in rows] == [
                ("Front door", "Ada"),
                ("Back door", "Grace"),
                ("Front door", "Ada"),
                ("Back door", None),
            ]
        assert a.stations() == ["Back door", "Front door"]
        assert [e.person for e in a.query(station="Back door", newest_first=False)] == ["Grace", None]
        out = tmp_path / "events.csv"
        assert b.export_csv(out) == 4
        lines = out.read_text().splitlines()
        assert lines[0].endswith(",station")
        assert [line.rsplit(",", 1)[1] for line in lines[1:]] == [
            "Front door",
            "Back door",
            "Front door",
            "Back door",
        ]
        assert b.export_csv(out, station="Front door") == 2
    finally:
        a.close()
        b.close()


def test_the_shared_history_filters_as_the_local_one_does(pg_server, db, tmp_path) -> None:
    from core.history import History

    events = [
        _event(0, "Ada"),
        _event(1, "Grace"),
        _event(2, "Ada", EventKind.LEFT),
        _event(3, kind=EventKind.UNKNOWN),
    ]
    with (
        SharedHistory(station_url(pg_server, db), station="A", outbox_path=tmp_path / "o.sqlite3") as shared,
        History(tmp_path / "h.sqlite3") as local,
    ):
        shared.record(events)
        local.record(events)
        assert shared.flush_pending()
        t0 = events[0].time
        for filters, offsets in (
            ({"person": "Ada"}, [2, 0]),
            ({"since": t0 + 1, "until": t0 + 2}, [2, 1]),
            ({"kinds": [EventKind.RECOGNIZED, "unknown"]}, [3, 1, 0]),
            ({"kinds": []}, []),
            ({"person": "Ada", "kinds": ["left"], "since": t0}, [2]),
        ):
            for history in (shared, local):
                assert [e.time - t0 for e in history.query(**filters)] == offsets, (history, filters)
                assert history.count(**filters) == len(offsets)
        # The shared store keeps the visit; the local history does not.
        (first,) = shared.query(until=t0)
        assert (first.visit_id, first.source_label, first.thumbnail) == (
            "visit-0",
            "Front door",
            events[0].thumbnail,
        )
        assert local.query(until=t0)[0].visit_id == ""


def test_push_and_pull_move_a_gallery_and_history_between_modes(
    pg_server, db, hamilton_gallery, tmp_path
) -> None:
    from core.history import History

    hist_path = tmp_path / "history.sqlite3"
    with History(hist_path) as h:
        h.extend([_event(i) for i in range(3)])
    with pg.connect(admin_url(pg_server, db)) as conn:
        first = push_gallery(conn, hamilton_gallery, station="office")
        events = push_history(conn, hist_path, station="office")
        again = push_gallery(conn, hamilton_gallery, station="office")
        events_again = push_history(conn, hist_path, station="office")
        pulled = pull_gallery(conn, tmp_path / "pulled")
    assert (first.people, first.photos, first.skipped) == (2, 3, 0)
    assert (again.people, again.photos, again.skipped) == (0, 0, 3)
    assert (events.events, events_again.events, events_again.skipped) == (3, 0, 3)
    assert pulled.photos == 3
    for person in ("Barack Obama", "Lin-Manuel Miranda"):
        src = sorted(p.read_bytes() for p in (hamilton_gallery / person).iterdir())
        dst = sorted(p.read_bytes() for p in (tmp_path / "pulled" / person).iterdir())
        assert src == dst


def test_the_outbox_event_id_is_a_uuid(pg_server, db, tmp_path) -> None:
    h = SharedHistory(station_url(pg_server, db), station="X", outbox_path=tmp_path / "o.sqlite3")
    try:
        h._stop.set()
        h._wake.set()
        h._thread.join(5)
        h.record([_event(1)])
        event_id, payload = h._outbox.execute("SELECT event_id, payload FROM outbox").fetchone()
        uuid.UUID(event_id)
        assert json.loads(payload)["source_label"] == "Front door"
    finally:
        h.close()


def test_a_station_started_while_the_server_is_away_keeps_its_events(tmp_path) -> None:
    url = f"postgresql://nobody@127.0.0.1:{tpg._free_port()}/ghostface"
    history = SharedHistory(url, station="Gate", outbox_path=tmp_path / "o.sqlite3", retry_s=0.2)
    try:
        assert history.problem is not None and "Connection refused" in history.problem
        assert "\n" not in history.problem
        history.record([_event(i) for i in range(3)])
        assert history.pending == 3 and not history.flush_pending(timeout_s=0.0)
    finally:
        history.close()
    # They are still on this computer's disk for the next start.
    again = SharedHistory(url, station="Gate", outbox_path=tmp_path / "o.sqlite3")
    try:
        assert again.pending == 3
    finally:
        again.close()


@pytest.fixture
def silent_server():  # type: ignore[no-untyped-def]
    with tpg.silent_server() as url:
        yield url


def test_a_station_can_open_without_waiting_for_a_silent_server(silent_server, tmp_path) -> None:
    start = time.monotonic()
    history = SharedHistory(
        silent_server, station="Gate", outbox_path=tmp_path / "o.sqlite3", retry_s=0.2, check_now=False
    )
    opened_s = time.monotonic() - start
    try:
        # The GUI thread's caller got it at once; the outbox thread found out on its own.
        assert opened_s < pg.CONNECT_TIMEOUT_S / 2
        _wait(lambda: history.problem is not None, timeout=pg.CONNECT_TIMEOUT_S + 5)
        assert "cannot be reached" in history.problem
        history.record([_event(1)])
        assert history.pending == 1
    finally:
        history.close()
    # Checking before returning (the command line's way) waits for the connect timeout instead.
    start = time.monotonic()
    SharedHistory(silent_server, station="Gate", outbox_path=tmp_path / "o.sqlite3").close()
    assert time.monotonic() - start >= pg.CONNECT_TIMEOUT_S * 0.8


def test_a_schema_misfit_found_by_the_outbox_thread_keeps_the_events(pg_server, tmp_path) -> None:
    name = tpg.fresh_database(pg_server, roles=False)
    url = pg_server.url(db=name)
    with pg.connect(url) as conn:
        conn.execute(
            "INSERT INTO schema_version(version, name) VALUES (%s, 'future')", (pg.SCHEMA_VERSION + 1,)
        )
        conn.commit()
    history = SharedHistory(
        url, station="A", outbox_path=tmp_path / "o.sqlite3", retry_s=0.1, check_now=False
    )
    try:
        history.record([_event(1), _event(2)])
        _wait(lambda: history.problem is not None, timeout=10)
        assert "newer than this station's" in history.problem and "2 events wait" in history.problem
        time.sleep(0.5)  # several delivery rounds: none may write into a schema it does not know
        assert history.pending == 2
        with pg.connect(url) as conn:
            assert conn.execute("SELECT COUNT(*) FROM events").fetchone()[0] == 0
    finally:
        history.close()
    assert history.left_in_outbox == 2


def test_a_history_opened_unchecked_on_a_server_without_its_tables_reads_as_one_clear_error(
    pg_server, tmp_path
) -> None:
    name = tpg.fresh_database(pg_server, roles=False)
    url = pg_server.url(db=name)
    with pg.connect(url) as conn:
        conn.execute("DROP TABLE events CASCADE")
        conn.commit()
    history = SharedHistory(url, station="A", outbox_path=tmp_path / "o.sqlite3", check_now=False)
    try:
        history.record([_event(1)])
        with pytest.raises(StoreError, match="cannot be read: .*events"):
            history.query()
        assert history.people() == []
        assert history.pending == 1  # the event waits on this computer
    finally:
        history.close()
    assert history.left_in_outbox == 1
