"""A station's name reaches its plugins: the attendance log says which door saw whom."""

from __future__ import annotations

import csv
from pathlib import Path

from core.builtin_plugins.attendance import COLUMNS, STATION_COLUMNS, AttendanceLog
from core.events import create_event_bus
from core.settings import Settings
from core.types import EventKind, RecognitionEvent


def _event(kind: EventKind, person: str, t: float) -> RecognitionEvent:
    return RecognitionEvent(kind, t, "cam", 1, person, 0.7, (1.0, 2.0, 3.0, 4.0), b"", int(t * 30), t)


def _attendance(settings: Settings, folder: Path) -> list[dict[str, str]]:
    settings = settings.replace(
        plugins={"enabled": {"attendance": True}, "options": {"attendance": {"folder": str(folder)}}}
    )
    bus = create_event_bus(settings, plugins=False, history=False)
    bus.publish_many([_event(EventKind.RECOGNIZED, "Ada", 1.0), _event(EventKind.LEFT, "Ada", 5.0)])
    bus.stop(timeout=10.0)
    (path,) = folder.glob("attendance-*.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_attendance_log_names_the_station_with_a_shared_store(tmp_path: Path) -> None:
    shared = Settings().replace(store={"backend": "postgresql", "station": "Front door"})
    rows = _attendance(shared, tmp_path / "shared")
    assert tuple(rows[0]) == STATION_COLUMNS
    assert [(r["person"], r["station"]) for r in rows] == [("Ada", "Front door")]
    assert next((tmp_path / "shared").glob("attendance-*.csv")).name.startswith("attendance-Front_door-")
    # The embedded default keeps its columns and file names.
    rows = _attendance(Settings(), tmp_path / "embedded")
    assert tuple(rows[0]) == COLUMNS
    assert AttendanceLog().path is None
