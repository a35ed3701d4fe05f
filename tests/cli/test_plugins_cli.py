"""``ghostface run --plugins`` and ``ghostface plugins list|test`` with a real folder plugin and a real
pip-installed entry-point distribution (issue 15, points 1, 3 and 4; issue 12, point 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.main import main
from core.history import History
from core.paths import history_path, plugins_dir, settings_path
from tests.core._plugin_kit import FOLDER_PLUGIN, read_jsonl, write


def _json_line(out: str) -> dict:
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert lines, "nothing printed"
    return json.loads(lines[-1])



@pytest.fixture
def station(doorbell_site: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A station as a user sets it up: the doorbell installed, a folder plugin, a settings file."""
    monkeypatch.syspath_prepend(str(doorbell_site))
    write(plugins_dir(), "jsonl_log.py", FOLDER_PLUGIN)
    write(plugins_dir(), "typo.py", "def on_evnt(e): pass\n")
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(
        json.dumps(
            {
                "plugins": {
                    "options": {
                        "jsonl-log": {"path": str(tmp_path / "log.jsonl")},
                        "doorbell": {"log": str(tmp_path / "rings.jsonl"), "token": "t0k3n"},
                    }
                }
            }
        ),
        encoding="utf-8",
    )
    return tmp_path



def test_run_with_plugins_fires_folder_and_installed_plugins_with_the_events_and_history(
    station: Path, hamilton_clip: Path, demo_gallery: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    events_path = station / "events.jsonl"
    args = [
        "run",
        "--source",
        str(hamilton_clip),
        "--gallery",
        str(demo_gallery),
        "--events",
        str(events_path),
    ]
    code = main([*args, "--plugins", "--source-label", "Stage", "--json"])
    assert code == 0
    summary = _json_line(capsys.readouterr().out)
    written = read_jsonl(events_path)
    logged, rings = read_jsonl(station / "log.jsonl"), read_jsonl(station / "rings.jsonl")
    assert logged[-1] == {"stopped": True} and rings[-1] == {"stopped": True}  # on_stop at the end
    # Both plugins got exactly the events of the run (the same ones the app's bus gets), in order.
    assert [(e["kind"], e["person"], e["visit_id"]) for e in logged[:-1]] == [
        (e["kind"], e["person"], e["visit_id"]) for e in written
    ]
    assert [e["visit_id"] for e in rings[:-1]] == [e["visit_id"] for e in written]
    assert {e["chime"] for e in rings[:-1]} == {"ding"} and {e["source_label"] for e in written} == {"Stage"}
    for person in ("lin-manuel-miranda", "obama"):
        visits = {e["visit_id"] for e in logged[:-1] if e["person"] == person}
        kinds = [e["kind"] for e in logged[:-1] if e["person"] == person]
        assert len(visits) == 1 and kinds == ["recognized", "left"], (person, kinds)
    left = next(e for e in logged if e.get("kind") == "left" and e["person"] == "lin-manuel-miranda")
    assert left["duration_s"] > 1.0 and left["first_seen"] > 0
    # The history recorder runs as in the app.
    recorded = History(history_path()).query(newest_first=False, limit=None)
    # (stored by wall time: a "left" carries the time of the last sighting, so compare as sets)
    assert sorted((str(e.kind), e.person or "") for e in recorded) == sorted(
        (e["kind"], e["person"] or "") for e in written
    )
    plugins = summary["plugins"]
    assert plugins["jsonl-log"]["isolated"] and plugins["doorbell"]["origin"] == "entry point"
    assert plugins["doorbell"]["calls"] == len(written) and plugins["doorbell"]["dropped"] == 0
    assert plugins["doorbell"]["settings"]["token"] == "***"
    assert plugins["typo"]["state"] == "broken" and "on_evnt" in plugins["typo"]["last_error"]
    assert plugins["history"]["calls"] == len(written)


def test_plugins_list_and_test_on_the_command_line(station: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plugins", "list", "--json"]) == 0
    listed = _json_line(capsys.readouterr().out)
    rows = {r["name"]: r for r in listed["plugins"]}
    assert listed["plugins_dir"] == str(plugins_dir())
    assert rows["doorbell"]["state"] == "ok" and rows["jsonl-log"]["state"] == "ok"
    assert rows["typo"]["state"] == "broken"
    assert main(["plugins", "list"]) == 0
    text = capsys.readouterr().out
    assert "typo [plugins folder] broken: unknown hook on_evnt" in text and "t0k3n" not in text
    assert main(["plugins", "list", "--no-plugins", "--json"]) == 0
    assert {r["name"] for r in _json_line(capsys.readouterr().out)["plugins"]} == {
        "attendance",
        "snapshot",
        "webhook",
    }

    assert main(["plugins", "test", "doorbell"]) == 0
    assert "doorbell: ok" in capsys.readouterr().out
    assert read_jsonl(station / "rings.jsonl")[0]["person"] == "Test Person"
    assert main(["plugins", "test", "typo", "--json"]) == 1
    result = _json_line(capsys.readouterr().out)
    assert result["state"] == "broken" and not result["ok"]
    assert main(["plugins", "test", "nobody"]) == 1
    assert "no plugin named 'nobody'" in capsys.readouterr().out
