"""Events panel, history dialog, plugins dialog and the desktop notification, on a real Qt event loop."""

from __future__ import annotations

import csv
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QDate, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.events_panel import EventsPanel  # noqa: E402
from app.history_dialog import HistoryDialog  # noqa: E402
from app.notify_plugin import DesktopNotification  # noqa: E402
from app.plugins_dialog import PluginsDialog  # noqa: E402
from core.events import EventBus, make_test_event  # noqa: E402
from core.history import History  # noqa: E402
from core.plugins import LoadedPlugin, discover_plugins, load_plugins  # noqa: E402
from core.settings import PluginSettings  # noqa: E402
from core.types import EventKind, RecognitionEvent  # noqa: E402

THUMB = make_test_event().thumbnail


def ev(
    person: str | None, t: float, kind: EventKind = EventKind.RECOGNIZED, sim: float = 0.61
) -> RecognitionEvent:
    return RecognitionEvent(kind, t, "cam 0", 3, person, sim, (1.0, 2.0, 3.0, 4.0), THUMB, 10, 1.5)


# ------------------------------------------------------------------------------------------ panel


def test_events_panel_newest_first_and_capped(qtbot) -> None:  # type: ignore[no-untyped-def]
    panel = EventsPanel(max_rows=5)
    qtbot.addWidget(panel)
    assert panel.row_count() == 0 and not panel.empty_label.isHidden()
    now = time.time()
    panel.add_events([ev("obama", now), ev(None, now + 1, EventKind.UNKNOWN, 0.12)])
    assert panel.row_count() == 2 and panel.empty_label.isHidden()
    person, kind, when, sim = panel.row_text(0)
    assert (person, kind, sim) == ("Unknown", "unknown face", "0.12")
    assert when == datetime.fromtimestamp(now + 1).strftime("%H:%M:%S")
    assert panel.row_text(1)[:2] == ("obama", "recognized")
    assert not panel.table.item(0, 0).icon().isNull()  # the thumbnail is shown

    panel.add_events([ev(f"p{i}", now + 2 + i) for i in range(6)])
    assert panel.row_count() == 5
    assert [panel.row_text(r)[0] for r in range(5)] == ["p5", "p4", "p3", "p2", "p1"]

    with qtbot.waitSignal(panel.history_requested, timeout=2000):
        panel.history_button.click()
    panel.clear_button.click()
    assert panel.row_count() == 0
    with pytest.raises(ValueError):
        EventsPanel(max_rows=0)


def test_an_event_without_thumbnail_still_shows(qtbot) -> None:  # type: ignore[no-untyped-def]
    panel = EventsPanel()
    qtbot.addWidget(panel)
    bare = RecognitionEvent(EventKind.LEFT, time.time(), "cam", 1, "obama", 0.5, (0, 0, 1, 1), b"not a jpeg")
    panel.add_events([bare])
    assert panel.row_text(0)[:2] == ("obama", "left")
    assert panel.table.item(0, 0).icon().isNull()


# ---------------------------------------------------------------------------------------- history


@pytest.fixture
def history(tmp_path: Path) -> Iterator[History]:
    h = History(tmp_path / "history.sqlite3")
    today = datetime.now().replace(hour=12, minute=0, second=0, microsecond=0)
    h.extend(
        [
            ev("obama", (today - timedelta(days=3)).timestamp()),
            ev("biden", (today - timedelta(days=2)).timestamp()),
            ev("obama", (today - timedelta(days=1)).timestamp(), EventKind.LEFT),
            ev(None, today.timestamp(), EventKind.UNKNOWN),
            ev("obama", today.timestamp() + 60),
        ]
    )
    yield h
    h.close()


def test_history_dialog_filters_and_exports(qtbot, history: History, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    dialog = HistoryDialog(history)
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 5 and dialog.count_label.text() == "5 events"
    assert [dialog.person_box.itemText(i) for i in range(dialog.person_box.count())] == [
        "All people",
        "biden",
        "obama",
    ]
    assert dialog.table.item(0, 3).text() == "obama"  # newest first

    dialog.person_box.setCurrentIndex(dialog.person_box.findData("obama"))
    assert dialog.table.rowCount() == 3
    dialog.kind_box.setCurrentIndex(dialog.kind_box.findData(EventKind.LEFT))
    assert dialog.table.rowCount() == 1 and dialog.table.item(0, 2).text() == "left"

    today = QDate.currentDate()
    dialog.set_filters(person="obama", since=today.addDays(-3), until=today.addDays(-1))
    assert dialog.table.rowCount() == 2
    out = tmp_path / "obama.csv"
    assert dialog.export_csv(out) == 2
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["person"] for r in rows] == ["obama", "obama"] and rows[0]["kind"] == "recognized"

    dialog.set_filters(since=today.addDays(5), until=today.addDays(6))
    assert dialog.table.rowCount() == 0 and not dialog.export_button.isEnabled()

    history.append(ev("lin", time.time()))
    dialog.reset_button.click()
    assert dialog.person_box.findData("lin") > 0 and dialog.table.rowCount() == 6
    dialog.set_filters(person="obama", since=today.addDays(-10), until=today)
    history.append(ev("kit", time.time()))
    dialog.refresh_button.click()  # new people appear, the filters stay
    assert dialog.person_box.findData("kit") > 0 and dialog.person_box.currentData() == "obama"
    assert dialog.table.rowCount() == 3


def test_history_dialog_opens_the_default_history(qtbot) -> None:  # type: ignore[no-untyped-def]
    with History() as h:
        h.append(ev("obama", time.time()))
    dialog = HistoryDialog()
    qtbot.addWidget(dialog)
    assert dialog.table.rowCount() == 1
    dialog.reject()  # closes the history it opened


# ---------------------------------------------------------------------------------------- plugins


class Recorder:
    NAME = "recorder"
    SETTINGS = {"greeting": "hi", "count": 3, "ratio": 0.5, "loud": False}

    def __init__(self) -> None:
        self.events: list[RecognitionEvent] = []
        self.settings: list[dict[str, object]] = []

    def on_start(self, context: object) -> None:
        self.settings.append(dict(context.settings))  # type: ignore[attr-defined]

    def on_event(self, event: RecognitionEvent) -> None:
        self.events.append(event)


class Raiser:
    def on_event(self, event: RecognitionEvent) -> None:
        raise RuntimeError("printer on fire")


def test_plugins_dialog_shows_health_switches_settings_and_test_event(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "broken.py").write_text("def on_event(event)\n    pass\n")
    found = discover_plugins(folder, entry_points=False)
    rec, bad = Recorder(), Raiser()
    plugins = load_plugins(found, PluginSettings()) + [
        LoadedPlugin("recorder", "plugins folder", rec, dict(Recorder.SETTINGS)),
        LoadedPlugin("raiser", "plugins folder", bad),
    ]
    bus = EventBus(plugins, max_failures=2)
    bus.start()
    try:
        dialog = PluginsDialog(bus, settings=PluginSettings(), discovered=found)
        qtbot.addWidget(dialog)
        assert dialog.status_of("broken").startswith("broken: SyntaxError: expected ':'")
        assert dialog.status_of("attendance") == "ok" and dialog.status_of("webhook") == "off"
        assert dialog.table.item(dialog.row_of("webhook"), 1).text() == "built-in"

        bus.publish_many([ev("obama", time.time()), ev("biden", time.time())])
        qtbot.waitUntil(
            lambda: dialog.status_of("raiser").startswith("disabled after 2 failures"), timeout=5000
        )
        assert "printer on fire" in dialog.status_of("raiser")
        qtbot.waitUntil(lambda: dialog.table.item(dialog.row_of("recorder"), 4).text() == "2", timeout=5000)

        # The switch: off, then the plugin gets nothing; the change is reported for saving.
        with qtbot.waitSignal(dialog.plugin_settings_changed, timeout=2000) as blocker:
            dialog.table.item(dialog.row_of("recorder"), 2).setCheckState(Qt.CheckState.Unchecked)
        assert blocker.args[0].enabled == {"recorder": False}
        assert not bus.status_of("recorder").enabled
        bus.publish(ev("lin", time.time()))
        qtbot.waitUntil(lambda: dialog.status_of("recorder") == "off", timeout=5000)

        # Settings: the form is typed by the defaults; Apply restarts the plugin with the new values.
        dialog.select("recorder")
        assert dialog.form_values() == Recorder.SETTINGS
        dialog.set_form_value("greeting", "hello")
        dialog.set_form_value("count", 7)
        dialog.set_form_value("loud", True)
        with qtbot.waitSignal(dialog.plugin_settings_changed, timeout=2000) as blocker:
            dialog.apply_button.click()
        expected = {"greeting": "hello", "count": 7, "ratio": 0.5, "loud": True}
        assert blocker.args[0].options == {"recorder": expected}
        qtbot.waitUntil(lambda: len(rec.settings) == 2, timeout=5000)
        assert rec.settings[-1] == expected

        # The test button reaches the plugin although it is switched off.
        dialog.test_button.click()
        qtbot.waitUntil(lambda: len(rec.events) == 3, timeout=5000)
        assert rec.events[-1].person == "Test Person"
        assert [e.person for e in rec.events[:2]] == ["obama", "biden"]

        dialog.select("broken")
        assert not dialog.apply_button.isEnabled() and not dialog.test_button.isEnabled()
        dialog.reject()
    finally:
        bus.stop(timeout=2.0)


def test_plugins_dialog_without_a_bus_is_read_only(qtbot, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    found = discover_plugins(tmp_path, entry_points=False)
    dialog = PluginsDialog(None, settings=PluginSettings(), discovered=found)
    qtbot.addWidget(dialog)
    assert dialog.status_of("attendance") == "not running"
    dialog.select("webhook")
    assert dialog.form_values()["url"] == "" and not dialog.apply_button.isEnabled()


# ----------------------------------------------------------------------------------- notification


def test_notification_is_shown_on_the_gui_thread(qtbot) -> None:  # type: ignore[no-untyped-def]
    plugin = DesktopNotification()
    found = discover_plugins(
        Path("/nonexistent-plugins"), builtins=False, entry_points=False, extra_builtins=[plugin]
    )
    assert [(d.name, d.origin, d.ok) for d in found] == [("notification", "built-in", True)]
    settings = PluginSettings(options={"notification": {"kinds": "recognized,left"}})
    (loaded,) = load_plugins(found, settings)
    assert not loaded.enabled  # it pops up on screen: only when the user asks for it
    bus = EventBus([LoadedPlugin(loaded.name, loaded.origin, loaded.plugin, loaded.settings, True)])
    bus.start()
    dispatch_threads: set[int] = set()

    original = plugin.on_event

    def on_event(event: RecognitionEvent) -> None:
        dispatch_threads.add(threading.get_ident())
        original(event)

    plugin.on_event = on_event  # type: ignore[method-assign]
    try:
        bus.publish_many(
            [
                ev("obama", time.time()),
                ev(None, time.time(), EventKind.UNKNOWN),
                ev("obama", time.time(), EventKind.LEFT),
            ]
        )
        qtbot.waitUntil(lambda: len(plugin.bridge.messages) == 2, timeout=5000)
    finally:
        bus.stop(timeout=2.0)
    assert plugin.bridge.messages == [
        ("obama recognized", "Similarity 0.61 · cam 0"),
        ("obama left", "Not seen for a while · cam 0"),
    ]
    # on_event ran on the plugin's dispatch thread, and the message was shown on the GUI thread.
    assert dispatch_threads and threading.get_ident() not in dispatch_threads
    assert plugin.bridge.last_thread is QApplication.instance().thread()
