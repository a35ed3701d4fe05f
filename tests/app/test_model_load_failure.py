"""A model that cannot load at start (here: SFace without the ``onnx`` package) never hangs the app.

Each case runs the real app in a subprocess in which ``import onnx`` really fails and the user cache is
empty, so the OpenCV-loadable SFace copy must be made and cannot be. The subprocess timeout is far above
the few seconds these take: a hang shows as a timeout, not as a stuck test run.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from tests._import_failure import REPO, env_without

LIMIT_S = 60
MISSING = "the Python package 'onnx' is missing"

# Starts the app as `python main.py` does, waits until the Live view shows why the models could not
# load and the worker has ended, then quits through the Quit action (the GUI thread must answer both).
DRIVER = """
import json, sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from app import main as app_main
from app.main_window import MainWindow

seen = {}
def poll():
    windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    live = windows[0].live if windows else None
    # Settled: the worker has ended and its error is the Live view's state.
    if live is None or windows[0].controller.is_running() \\
            or live.live_stack.currentWidget() is not live.empty_state \\
            or live.empty_state.title.text() != "The models could not be loaded":
        QTimer.singleShot(50, poll)
        return
    seen.update(title=live.empty_state.title.text(), message=live.empty_state.message.text(),
                quit_at=time.monotonic())
    windows[0].menu_actions.quit.trigger()

app_main._application()
QTimer.singleShot(50, poll)
code = app_main.main(sys.argv[1:])
seen["quit_s"] = time.monotonic() - seen.get("quit_at", time.monotonic())
print("RESULT " + json.dumps({"code": code, **seen}))
"""


def _run(args: list[str], tmp_path: Path) -> tuple[subprocess.CompletedProcess[str], float]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, *args],
        cwd=REPO,
        env=env_without("onnx", tmp_path),
        capture_output=True,
        text=True,
        timeout=LIMIT_S,
    )
    return done, time.monotonic() - start


def test_measure_run_without_onnx_ends_at_once_with_the_reason(
    hamilton_clip: Path, hamilton_gallery: Path, tmp_path: Path
) -> None:
    # The bundle's smoke test runs the app this way; it used to wait for a first frame until killed.
    out = tmp_path / "measure.json"
    done, _ = _run(
        [
            "main.py",
            *("--source", str(hamilton_clip), "--gallery", str(hamilton_gallery)),
            *("--settings", str(tmp_path / "s.json"), "--measure", "5", "--measure-out", str(out)),
        ],
        tmp_path,
    )
    assert done.returncode == 1, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "no frame was processed" in line]
    assert len(lines) == 1 and MISSING in lines[0], done.stderr[-3000:]
    report = json.loads(out.read_text(encoding="utf-8"))
    assert MISSING in report["error"] and report["frames_processed"] == 0


def test_default_run_without_onnx_shows_the_reason_and_quits(
    hamilton_clip: Path, hamilton_gallery: Path, tmp_path: Path
) -> None:
    done, _ = _run(
        [
            "-c",
            DRIVER,
            *("--source", str(hamilton_clip), "--gallery", str(hamilton_gallery)),
            *("--settings", str(tmp_path / "s.json")),
        ],
        tmp_path,
    )
    results = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert results, done.stderr[-3000:]
    result = json.loads(results[-1].removeprefix("RESULT "))
    assert result["code"] == 0
    assert result["title"] == "The models could not be loaded"
    assert MISSING in result["message"] and "pip install onnx" in result["message"]
    assert result["quit_s"] < 15
