"""The window on a 1366x768 screen at 100 % and 150 %: it fits, nothing is clipped, errors never grow it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCREEN = {
    "synchronousWindowSystemEvents": False,
    "windowFrameMargins": False,
    "screens": [{"name": "laptop", "x": 0, "y": 0, "width": 1366, "height": 768, "logicalDpi": 96, "logicalDpiBase": 96, "dpr": 1}],
}


def _measure(scale: str, clip: Path, tmp_path: Path) -> dict:
    config = tmp_path / "screen.json"
    config.write_text(json.dumps(SCREEN))
    env = {
        **os.environ,
        "QT_SCALE_FACTOR": scale,
        "QT_QPA_PLATFORM": f"offscreen:configfile={config}",
        "GHOSTFACE_HOME": str(tmp_path / "home"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "tests.app.window_fit_probe", str(clip)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("scale", ["1", "1.5"])
def test_the_window_fits_a_1366x768_screen(scale: str, hamilton_clip: Path, tmp_path: Path) -> None:
    figures = _measure(scale, hamilton_clip, tmp_path)
    width, height = figures["available"]
    # At 150 % the screen is 911x512 logical pixels; the window and its smallest size fit in it.
    assert figures["minimum"][0] <= width and figures["minimum"][1] <= height, figures
    assert figures["size"][0] <= width and figures["size"][1] <= height, figures
    for name, (w, h, min_w, min_h) in figures["dialogs"].items():
        assert w <= width and h <= height and min_w <= width and min_h <= height, (name, figures["dialogs"])
    # Every toolbar button shown, none in an overflow menu.
    assert not figures["toolbar_hidden"] and not figures["toolbar_overflow"], figures
    assert not figures["page_toolbar_overflow"], figures["page_toolbar_overflow"]
    # No list wider than its view, no column narrower than its heading; a name fits the people list.
    views = {view["name"]: view for view in figures["views"]}
    assert {"PeopleInView", "EventsTable", "ModelFiles"} <= set(views), views.keys()
    for view in figures["views"]:
        assert view["length"] <= view["viewport"] + 1, view
        for column in view["columns"]:
            assert column["width"] >= column["needs"], (view["name"], column)
    person = views["PeopleInView"]["columns"][0]
    assert person["width"] >= figures["name_px"] + 4, person
    # A 5,000-character error neither grows the window nor hides: shortened, the whole in "Details".
    shown = {k: v for k, v in figures.items() if k != "views"}
    assert figures["banner_kept_size"] and figures["details_kept_size"], shown
    assert figures["minimum_with_banner"] <= height, shown
    assert figures["banner_height"] < height / 4
    assert figures["details_text"] > 5000
