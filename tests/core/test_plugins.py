"""Plugin discovery: plugins folder, entry points, built-ins; broken plugins are listed, not fatal."""

from __future__ import annotations

import shutil
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core import paths
from core.events import EventBus
from core.plugins import (
    DiscoveredPlugin,
    Origin,
    discover_plugins,
    load_plugins,
)
from core.settings import PluginSettings
from core.types import EventKind, RecognitionEvent

REPO = Path(__file__).resolve().parents[2]

GOOD = '''
"""Counts events."""
NAME = "counter"
SETTINGS = {"step": 1, "label": "hits"}
seen = []

def on_event(event):
    seen.append(event)
'''


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def by_name(found: list[DiscoveredPlugin]) -> dict[str, DiscoveredPlugin]:
    return {d.name: d for d in found}


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def test_folder_discovery_goes_on_past_broken_plugins(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    write(folder, "a_syntax.py", "def on_event(event)\n    pass\n")
    write(folder, "b_good.py", GOOD)
    write(folder, "c_import.py", "import no_such_module_here\ndef on_event(e): pass\n")
    write(folder, "d_raises.py", "raise RuntimeError('config missing')\n")
    write(folder, "e_exits.py", "import sys\nsys.exit(2)\n")
    write(folder, "f_nohooks.py", "X = 1\n")
    write(folder, "g_badsettings.py", "SETTINGS = [1]\ndef on_event(e): pass\n")
    write(folder, "h_pkg/__init__.py", "from .impl import on_event\nNAME = 'pkg'\n")
    write(folder, "h_pkg/impl.py", "def on_event(event):\n    return None\n")
    write(folder, "_private.py", "raise RuntimeError('never imported')\n")
    write(folder, "notes.txt", "not a plugin")

    found = by_name(discover_plugins(folder, builtins=False, entry_points=False))
    assert set(found) == {
        "a_syntax",
        "counter",
        "c_import",
        "d_raises",
        "e_exits",
        "f_nohooks",
        "g_badsettings",
        "pkg",
    }
    assert found["a_syntax"].error == "SyntaxError: expected ':' (a_syntax.py, line 1)"
    assert found["a_syntax"].plugin is None and "a_syntax.py" in found["a_syntax"].location
    assert found["c_import"].error == "ModuleNotFoundError: No module named 'no_such_module_here'"
    assert found["d_raises"].error == "RuntimeError: config missing"
    assert "Traceback" in found["d_raises"].details
    assert found["e_exits"].error == "SystemExit: 2"
    assert found["f_nohooks"].error == "defines none of the hooks on_start, on_event, on_stop"
    assert found["g_badsettings"].error == "SETTINGS must be a dict, not list"
    for name in ("counter", "pkg"):
        assert found[name].ok and found[name].origin == Origin.FOLDER
    assert found["pkg"].location == str(folder / "h_pkg")
    # A plugin module never shadows a real module of the same name.
    assert "b_good" not in sys.modules


def test_default_folder_is_the_user_plugins_dir() -> None:
    write(paths.plugins_dir(), "mine.py", GOOD)
    found = by_name(discover_plugins(builtins=False, entry_points=False))
    assert found["counter"].ok and found["counter"].location == str(paths.plugins_dir() / "mine.py")


def test_builtins_and_default_enabled_state(tmp_path: Path) -> None:
    write(tmp_path, "user.py", GOOD)
    found = discover_plugins(tmp_path, entry_points=False)
    builtins = [d.name for d in found if d.origin == Origin.BUILTIN]
    assert builtins == ["attendance", "snapshot", "webhook"]
    loaded = {p.name: p for p in load_plugins(found, PluginSettings())}
    # Only the attendance log runs unasked among the built-ins; a user's own plugin runs.
    assert {n: p.enabled for n, p in loaded.items()} == {
        "attendance": True,
        "snapshot": False,
        "webhook": False,
        "counter": True,
    }
    settings = PluginSettings(enabled={"webhook": True, "counter": False}, options={"counter": {"step": 5}})
    loaded = {p.name: p for p in load_plugins(found, settings)}
    assert loaded["webhook"].enabled and not loaded["counter"].enabled
    assert dict(loaded["counter"].settings) == {"step": 5, "label": "hits"}
    assert loaded["webhook"].settings["url"] == ""  # defaults where the user set nothing


def test_a_name_taken_twice_keeps_the_first(tmp_path: Path) -> None:
    write(tmp_path, "a.py", "NAME = 'attendance'\ndef on_event(e): pass\n")
    found = discover_plugins(tmp_path, entry_points=False)
    dupes = [d for d in found if d.name == "attendance"]
    assert [d.origin for d in dupes] == [Origin.BUILTIN, Origin.FOLDER]
    assert dupes[0].ok and "already used" in (dupes[1].error or "")
    assert [p.origin for p in load_plugins(found, PluginSettings()) if p.name == "attendance"] == [
        Origin.BUILTIN
    ]


def test_entry_point_of_an_installed_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    write(
        site,
        "acme_door.py",
        '''
        """Opens the door for known people."""
        NAME = "acme-door"
        SETTINGS = {"relay": 1}

        class Door:
            NAME = "acme-door-class"
            def __init__(self):
                self.opened = []
            def on_event(self, event):
                self.opened.append(event.person)

        def on_event(event):
            pass
        ''',
    )
    write(site, "acme_broken.py", "raise ImportError('needs libgpio')\n")
    write(site, "acme_door-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: acme-door\nVersion: 1.0\n")
    write(
        site,
        "acme_door-1.0.dist-info/entry_points.txt",
        "[ghostface.plugins]\n"
        "door = acme_door\n"
        "door_class = acme_door:Door\n"
        "broken = acme_broken\n"
        "\n[console_scripts]\nunrelated = acme_door:on_event\n",
    )
    monkeypatch.syspath_prepend(str(site))
    found = by_name(discover_plugins(tmp_path / "empty", builtins=False))
    assert {"acme-door", "acme-door-class", "broken"} <= set(found)
    module = found["acme-door"]
    assert module.ok and module.origin == Origin.ENTRY_POINT and module.location == "acme-door: acme_door"
    cls = found["acme-door-class"]
    assert cls.ok and type(cls.plugin).__name__ == "Door"  # a class is instantiated
    assert found["broken"].error == "ImportError: needs libgpio"

    # And it runs through the bus like any plugin.
    loaded = [p for p in load_plugins(found.values(), PluginSettings()) if p.name == "acme-door-class"]
    bus = EventBus(loaded)
    bus.start()
    bus.publish(RecognitionEvent(EventKind.RECOGNIZED, 0.0, "cam", 1, "obama", 0.8, (0, 0, 1, 1)))
    wait_until(lambda: cls.plugin.opened == ["obama"])  # type: ignore[attr-defined]
    bus.stop()


def test_example_plugins_work(tmp_path: Path) -> None:
    folder = tmp_path / "plugins"
    shutil.copytree(REPO / "examples" / "plugins", folder)
    found = discover_plugins(folder, builtins=False, entry_points=False)
    assert len(found) == 2 and all(d.ok for d in found), found
    settings = PluginSettings(options={"jsonl-log": {"path": str(tmp_path / "events.jsonl")}})
    loaded = load_plugins(found, settings)
    bus = EventBus(loaded)
    bus.start()
    sent = [
        RecognitionEvent(EventKind.RECOGNIZED, 1.0, "cam", 1, "obama", 0.8, (0, 0, 1, 1)),
        RecognitionEvent(EventKind.LEFT, 5.0, "cam", 1, "obama", 0.8, (0, 0, 1, 1), stream_time=4.0),
        RecognitionEvent(EventKind.RECOGNIZED, 9.0, "cam", 2, "obama", 0.8, (0, 0, 1, 1)),
    ]
    bus.publish_many(sent)
    assert bus.stop(timeout=5.0) == []
    assert all(s.failures == 0 and s.calls == 3 for s in bus.status()), bus.status()
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert len(lines) == 3 and '"person": "obama"' in lines[0]
    counter = next(p for p in loaded if p.name == "visit-counter").plugin
    assert counter.visits == {"obama": 2}  # type: ignore[attr-defined]
