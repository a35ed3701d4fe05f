"""The Live tab on the real clip: a loop is a new stream for the window and its plugins; unknown faces
are numbered people whose tooltip says why they are Unknown, in the people lists and in Diagnostics."""

from __future__ import annotations

from pathlib import Path

from app.main_window import MainWindow
from core.paths import plugins_dir
from core.settings import Settings
from core.types import EventKind, FrameResult
from tests.core._plugin_kit import FOLDER_PLUGIN, read_jsonl, write

RUN_TIMEOUT_MS = 120_000
PEOPLE = ("Barack Obama", "Lin-Manuel Miranda")


def _window(qtbot, settings: Settings) -> MainWindow:  # type: ignore[no-untyped-def]
    window = MainWindow(settings, system_trash=False)
    qtbot.addWidget(window)
    window.controller.realtime = False  # every frame, as fast as it goes: the loop comes sooner
    window.show()
    return window


def _first_seen_s(window: MainWindow) -> dict[str, float]:
    """Each row of "In view" as drawn, with the video time it was first seen at."""
    people = window.live.people
    people.refresh()
    rows = [people.topLevelItem(i) for i in range(people.topLevelItemCount())]
    return {row.text(0): float(row.toolTip(2).split(" s ")[0]) for row in rows}


def test_a_loop_ends_every_visit_for_the_window_and_its_plugins_then_starts_afresh(
    qtbot, hamilton_clip: Path, hamilton_gallery: Path, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    write(plugins_dir(), "jsonl_log.py", FOLDER_PLUGIN)
    log = tmp_path / "events.jsonl"
    settings = Settings().replace(
        camera={"source": str(hamilton_clip), "loop_video": True, "max_fps": 240.0},
        gallery_dir=str(hamilton_gallery),
        plugins={"options": {"jsonl-log": {"path": str(log)}}},
    )
    window = _window(qtbot, settings)
    seen: list[tuple[int, int, float, tuple]] = []  # no frames kept: (stream, index, time, events)
    at_loop: dict[str, dict[str, float]] = {}

    def record(result: FrameResult) -> None:
        if result.stream_id == 1 and not any(s == 1 for s, *_ in seen):
            at_loop["before"] = before
            at_loop["after"] = _first_seen_s(window)
        seen.append((result.stream_id, result.frame_index, result.timestamp, result.events))

    before: dict[str, float] = {}

    def remember_pass_1(result: FrameResult) -> None:
        if result.stream_id == 0 and result.frame_index % 10 == 0:
            before.clear()
            before.update(_first_seen_s(window))

    window.controller.frame_ready.connect(remember_pass_1)
    window.controller.frame_ready.connect(record)
    window.start()

    def recognized_in_pass_2() -> bool:
        return any(s == 1 and any(e.kind is EventKind.RECOGNIZED for e in ev) for s, _i, _t, ev in seen)

    qtbot.waitUntil(recognized_in_pass_2, timeout=RUN_TIMEOUT_MS)
    window.close()  # stops the bus: every event reached the plugin

    # Frame index and stream time restart with the second pass.
    first_of_2 = next(i for i, (s, *_r) in enumerate(seen) if s == 1)
    assert seen[first_of_2 - 1][1] > 200 and seen[first_of_2][1:3] == (0, 0.0)
    # "In view" empties at the loop: who was in view at the end of pass 1 was first seen seconds into it;
    # after the loop every row is a new visit, first seen at the start of pass 2.
    assert max(at_loop["before"].values()) > 3.0
    assert all(t < 0.5 for t in at_loop["after"].values()), at_loop

    events = [(s, e) for s, _i, _t, ev in seen for e in ev]
    plugin = read_jsonl(log)
    assert plugin[-1] == {"stopped": True}
    for rows in ([e.to_dict() for _s, e in events], plugin[:-1]):
        # Each recognized of pass 1 has its left, same visit, before the same person's next recognized.
        recognized = [i for i, r in enumerate(rows) if r["kind"] == "recognized"]
        lin = [i for i in recognized if rows[i]["person"] == "Lin-Manuel Miranda"]
        assert len(lin) >= 2, rows
        first, again = rows[lin[0]], rows[lin[1]]
        lefts = [i for i, r in enumerate(rows) if r["kind"] == "left" and r["visit_id"] == first["visit_id"]]
        assert len(lefts) == 1 and lin[0] < lefts[0] < lin[1]
        for i in recognized:
            if i < lin[1]:  # every visit of pass 1 has ended before pass 2's first recognized
                assert any(
                    r["kind"] == "left" and r["visit_id"] == rows[i]["visit_id"] for r in rows[i : lin[1]]
                )
        assert again["visit_id"] != first["visit_id"]
        assert (
            again["frame"] < rows[lefts[0]]["frame"] and again["stream_time"] < rows[lefts[0]]["stream_time"]
        )
        assert rows[lefts[0]]["duration_s"] > 0


def test_an_unknown_face_is_a_numbered_person_whose_tooltip_says_why(
    qtbot, hamilton_clip: Path, hamilton_gallery: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = Settings().replace(
        camera={"source": str(hamilton_clip), "loop_video": False, "max_fps": 240.0},
        gallery_dir=str(hamilton_gallery),
    )
    window = _window(qtbot, settings)
    window.start()
    people, seen = window.live.people, window.live.seen

    def numbered_unknown_in_view() -> str | None:
        # Once the gallery is loaded (the gallery worker embeds it meanwhile; until then the tooltip
        # says there is nobody to compare with), an unknown with a candidate.
        people.refresh()
        names = [n for n in people.names_listed() if n.startswith("Unknown #")]
        return next((n for n in names if "Best candidate" in people.tooltip_of(n)), None)

    qtbot.waitUntil(lambda: numbered_unknown_in_view() is not None, timeout=RUN_TIMEOUT_MS)
    name = numbered_unknown_in_view()
    assert name is not None
    tip = people.tooltip_of(name)
    # "Unknown #3: Best candidate: Barack Obama (0.21), below the similarity threshold 0.36."
    assert tip.startswith(f"{name}: Best candidate: ") and "below the similarity threshold" in tip
    assert any(person in tip for person in PEOPLE)
    row = next(
        people.topLevelItem(i)
        for i in range(people.topLevelItemCount())
        if people.topLevelItem(i).text(0) == name
    )
    assert row.toolTip(0) == tip
    # "Seen" lists the known people and the numbered unknowns of the run, with their last-seen time.
    qtbot.waitUntil(
        lambda: "Lin-Manuel Miranda" in seen.names() and name in seen.names(), timeout=RUN_TIMEOUT_MS
    )
    assert not [n for n in seen.names() if n == "Unknown"]
    # Diagnostics lists the unknown faces in view with the candidate and the rule.
    window.show_diagnostics()
    reasons = window.diagnostics.unknown_reasons
    qtbot.waitUntil(lambda: bool(reasons.rows()), timeout=RUN_TIMEOUT_MS)
    face, candidate, similarity, rule, why = reasons.rows()[0]
    assert face.startswith("Unknown") and candidate in PEOPLE and -1.0 <= float(similarity) <= 1.0
    assert rule in ("similarity threshold", "votes", "top-1/top-2 margin") and why.startswith(
        "Best candidate"
    )
    window.close()
