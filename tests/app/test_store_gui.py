"""The shared store in the GUI: the Stations settings page with its connection test, and History with
the station of every event; against a real PostgreSQL server."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest

from app.history_dialog import ALL_STATIONS, HistoryDialog
from app.settings_dialog import SettingsDialog
from core.settings import Settings
from core.types import EventKind, RecognitionEvent
from tests import _postgres as tpg

pytest.importorskip("psycopg")


def _event(person: str | None, t: float, kind: EventKind = EventKind.RECOGNIZED) -> RecognitionEvent:
    return RecognitionEvent(kind, t, "cam", 1, person, 0.6, (1.0, 2.0, 30.0, 40.0), b"", 3, 0.1)


def test_the_stations_page_tests_the_connection_and_never_keeps_a_password(qtbot, pg_server) -> None:  # type: ignore[no-untyped-def]
    db = tpg.fresh_database(pg_server)
    saved: list[Settings] = []
    dialog = SettingsDialog(Settings(), save=saved.append, devices=["cpu"])
    qtbot.addWidget(dialog)
    page = dialog.store_page
    assert page.embedded.isChecked() and not page.url.isEnabled()  # this computer is the default
    page.shared.setChecked(True)
    assert page.url.isEnabled() and page.test_button.isEnabled()

    page.url.setText(pg_server.url(tpg.STATION_USER, "wrong", db))
    page.test_button.click()
    qtbot.waitUntil(lambda: not page.testing, timeout=15000)
    text = page.result.text()
    assert text.startswith("Cannot use the server: cannot connect to the shared store gf_station@127.0.0.1")
    assert 'password authentication failed for user "gf_station"' in text and "\n" not in text

    page.url.setText(pg_server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db))
    page.test_button.click()
    qtbot.waitUntil(lambda: not page.testing, timeout=15000)
    assert "as gf_station: schema version 1; this station recognizes and records events" in page.result.text()

    page.url.editingFinished.emit()  # leaving the field: the password goes, and the user is told
    assert tpg.STATION_PASSWORD not in page.url.text() and "password was removed" in page.result.text()
    page.station.setText("Front door")
    dialog.accept()
    store = saved[-1].store
    assert store.backend == "postgresql" and store.station == "Front door"
    assert tpg.STATION_PASSWORD not in store.url and f":{pg_server.port}/{db}" in store.url


def test_the_stations_page_moves_a_gallery_to_the_server_and_back(
    qtbot, pg_server, hamilton_gallery, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    db = tpg.fresh_database(pg_server)
    dialog = SettingsDialog(Settings().replace(gallery_dir=str(hamilton_gallery)), devices=["cpu"])
    qtbot.addWidget(dialog)
    page = dialog.store_page
    page.shared.setChecked(True)
    page.url.setText(pg_server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db))
    page.push_button.click()  # a station may not change the gallery: one clear line
    qtbot.waitUntil(lambda: not page.testing, timeout=15000)
    assert page.result.text() == (
        "Cannot use the server: this database user may not push the gallery: it needs the ghostface_admin role"
    )
    page.url.setText(pg_server.url(tpg.ADMIN_USER, tpg.ADMIN_PASSWORD, db))
    page.push_button.click()
    qtbot.waitUntil(lambda: not page.testing, timeout=15000)
    assert "2 people created, 3 photos copied, 0 already there" in page.result.text()
    page.pull_gallery(tmp_path / "copy")
    qtbot.waitUntil(lambda: not page.testing, timeout=15000)
    assert "3 photos copied" in page.result.text()
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["Barack Obama", "Lin-Manuel Miranda"]
    dialog.reject()


def test_history_shows_every_station_with_a_filter_and_exports_it(qtbot, pg_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from core.store.shared_history import SharedHistory

    db = tpg.fresh_database(pg_server)
    url = pg_server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db)
    now = time.time()
    with (
        SharedHistory(url, station="Front door", outbox_path=tmp_path / "a.sqlite3") as a,
        SharedHistory(url, station="Back door", outbox_path=tmp_path / "b.sqlite3") as b,
    ):
        a.record([_event("Ada", now - 60)])
        b.record([_event("Grace", now - 30), _event(None, now, EventKind.UNKNOWN)])
        assert a.flush_pending() and b.flush_pending()
        dialog = HistoryDialog(a)
        qtbot.addWidget(dialog)
        assert dialog.columns[-1] == "Station" and dialog.table.rowCount() == 3
        stations = [dialog.table.item(row, len(dialog.columns) - 1).text() for row in range(3)]
        assert stations == ["Back door", "Back door", "Front door"]  # newest first
        assert [dialog.station_box.itemText(i) for i in range(dialog.station_box.count())] == [
            ALL_STATIONS,
            "Back door",
            "Front door",
        ]
        dialog.station_box.setCurrentIndex(dialog.station_box.findData("Front door"))
        assert dialog.table.rowCount() == 1 and dialog.table.item(0, 3).text() == "Ada"
        out = tmp_path / "front.csv"
        assert dialog.export_csv(out) == 1
        assert [(r["person"], r["station"]) for r in csv.DictReader(out.open(encoding="utf-8"))] == [
            ("Ada", "Front door")
        ]
        dialog.close()


def test_the_gallery_tab_follows_another_station_live(qtbot, pg_server, demo_dir: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app.gallery_worker import GalleryController, RenamePerson, SyncGallery
    from core.detection import create_detector
    from core.embedding import create_embedder
    from core.store.shared_gallery import SharedGallery

    db = tpg.fresh_database(pg_server)
    admin = pg_server.url(tpg.ADMIN_USER, tpg.ADMIN_PASSWORD, db)
    # The settings never hold the password: libpq finds it (here in PGPASSWORD; on a station in ~/.pgpass).
    settings = Settings().replace(
        store={"backend": "postgresql", "url": pg_server.url(tpg.STATION_USER, None, db), "station": "Door"}
    )
    people: list[list[str]] = []
    failures: list[object] = []
    controller = GalleryController(settings)
    controller.people_ready.connect(lambda found: people.append([p.name for p in found]))
    controller.error.connect(failures.append)
    monkeypatch.setenv("PGPASSWORD", tpg.STATION_PASSWORD)
    try:
        controller.submit(SyncGallery())
        qtbot.waitUntil(lambda: bool(people) or bool(failures), timeout=60_000)
        assert people[-1] == [] and not failures
        with SharedGallery(
            admin, create_embedder("sface"), create_detector("yunet"), station="Office"
        ) as office:
            office.add_photos("Ada", [demo_dir / "obama.jpg"])
            # The other station's change reaches this one's list and its matcher, with no job submitted.
            qtbot.waitUntil(lambda: people[-1] == ["Ada"], timeout=2_000)
            qtbot.waitUntil(lambda: controller.view.snapshot().labels == ("Ada",), timeout=2_000)
        controller.submit(RenamePerson("Ada", "Grace"))  # a station may not change the gallery
        qtbot.waitUntil(lambda: bool(failures), timeout=30_000)
        assert "needs the ghostface_admin role" in str(failures[-1])
    finally:
        assert controller.stop()


def test_the_app_records_into_the_shared_history_with_its_station(qtbot, pg_server, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from app.context import _open_history
    from app.errors import ErrorReporter
    from core.store.shared_history import SharedHistory

    db = tpg.fresh_database(pg_server)
    settings = Settings().replace(
        store={"backend": "postgresql", "url": pg_server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db)}
    )
    # The settings never hold the password: libpq finds it (here in PGPASSWORD; on a station in ~/.pgpass).
    monkeypatch.setenv("PGPASSWORD", tpg.STATION_PASSWORD)
    errors = ErrorReporter()
    history = _open_history(errors, settings.replace(store={"station": "Lobby"}))
    try:
        assert isinstance(history, SharedHistory) and not errors.texts
        assert history.station == "Lobby" and history.problem is None
        history.record([_event("Ada", time.time())])
        assert history.flush_pending() and history.stations() == ["Lobby"]
    finally:
        history.close()
    local = _open_history(errors, Settings())
    assert local is not None and not isinstance(local, SharedHistory)  # the embedded default
    local.close()


def test_the_app_opens_a_shared_history_without_waiting_for_a_silent_server(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from app.context import _open_history
    from app.errors import ErrorReporter
    from core.store import postgres as pg

    errors = ErrorReporter()
    with tpg.silent_server() as url:
        settings = Settings().replace(store={"backend": "postgresql", "url": url, "station": "Lobby"})
        start = time.monotonic()
        history = _open_history(errors, settings)  # on the GUI thread
        opened_s = time.monotonic() - start
        try:
            assert opened_s < pg.CONNECT_TIMEOUT_S / 2 and not errors.texts
            qtbot.waitUntil(lambda: history.problem is not None, timeout=(pg.CONNECT_TIMEOUT_S + 5) * 1000)
            assert "cannot be reached" in history.problem
        finally:
            history.close()


def test_history_says_when_the_server_cannot_be_read(qtbot, pg_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from core.store.shared_history import SharedHistory

    db = tpg.fresh_database(pg_server)
    url = pg_server.url(tpg.STATION_USER, tpg.STATION_PASSWORD, db)
    with SharedHistory(url, station="Front door", outbox_path=tmp_path / "a.sqlite3") as history:
        history.record([_event("Ada", time.time())])
        assert history.flush_pending()
        pg_server.stop()
        try:
            opened = time.monotonic()
            dialog = HistoryDialog(history)  # opens, with no traceback, and without a long wait
            assert time.monotonic() - opened < 4.0
            qtbot.addWidget(dialog)
            assert dialog.table.rowCount() == 0
            assert dialog.count_label.text().startswith("The history cannot be read: the shared history on ")
        finally:
            pg_server.start()

        def back() -> bool:
            dialog.reload()  # Refresh, as the user would, until the pool has reconnected
            return dialog.table.rowCount() == 1

        qtbot.waitUntil(back, timeout=30_000)
        dialog.reset_filters()
        assert dialog.station_box.findData("Front door") > 0
        dialog.close()


def test_the_gallery_tab_says_in_one_line_why_the_server_refused(qtbot, pg_server) -> None:  # type: ignore[no-untyped-def]
    from app.gallery_worker import GalleryController, SyncGallery

    db = tpg.fresh_database(pg_server)
    settings = Settings().replace(
        store={"backend": "postgresql", "url": pg_server.url(tpg.STATION_USER, None, db) + "?password=wrong"}
    )
    assert "wrong" not in settings.store.url  # dropped from the settings: libpq then has no password
    failures: list[object] = []
    controller = GalleryController(settings)
    controller.error.connect(failures.append)
    try:
        controller.submit(SyncGallery())
        qtbot.waitUntil(lambda: bool(failures), timeout=30_000)
        text = str(failures[-1])
        assert text.startswith("cannot connect to the shared store gf_station@127.0.0.1") and "\n" not in text
        assert "password" in text
    finally:
        assert controller.stop()
