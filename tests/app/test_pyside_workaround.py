"""A long-running window must not abort Python: Qt calls that slip references on None/True/False."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import sys
import app  # applies the workaround, as every entry point does
from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QApplication, QLabel

qt = QApplication([])
label = QLabel()
before = sys.getrefcount(None)
for _ in range(100_000):  # what a live window does in a few minutes
    label.setText("x")

class Emitter(QObject):
    flag = Signal(bool)

emitter = Emitter()
emitter.flag.connect(lambda value: None)
for _ in range(20_000):
    emitter.flag.emit(True)
    emitter.flag.emit(False)
print("alive", sys.getrefcount(None) > 1_000_000)
"""


def test_many_qt_calls_do_not_abort_the_interpreter() -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "alive True" in done.stdout
