"""Ready-to-grab views of the trainer tab for the screenshots: its align step with a finished report.

``shots()`` returns factories; each builds the widget, runs the real work it shows (the engine's detector
aligning the demo photos, in the tab's worker thread) and returns it once there is something to see.
``tools/screenshots.py`` collects them and calls each with its ``Shot`` (a scratch folder, the screen).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("GHOSTFACE_SHARED", REPO.parent / "shared"))
DEMO = SHARED / "data" / "demo"

# The user folders go to a scratch place unless the caller chose one (tools/screenshots.py runs with a
# neutral HOME): the crops must not land in a real user's data folder.
if "GHOSTFACE_SHOTS_HOME" not in os.environ:
    os.environ.setdefault("GHOSTFACE_HOME", tempfile.mkdtemp(prefix="ghostface-trainer-shots-"))
os.environ.setdefault("GHOSTFACE_MODEL_PATH", str(SHARED / "models"))

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402 - after the environment above
from PySide6.QtWidgets import QWidget  # noqa: E402

__all__ = ["shots"]


def _demo_photos(root: Path) -> Path:
    """One folder per person from the demo photos, with a group photo and a file that is no photo."""
    train = DEMO / "knn_examples" / "train"
    for person in ("obama", "biden", "kit_harington", "rose_leslie"):
        shutil.copytree(train / person, root / person, dirs_exist_ok=True)
    shutil.copy(DEMO / "two_people.jpg", root / "obama" / "two_people.jpg")
    (root / "rose_leslie" / "notes.jpg").write_text("not a photo", encoding="utf-8")
    return root


def _wait(done: Callable[[], bool], timeout_ms: int = 120_000) -> None:
    """Run the event loop until ``done()`` (the worker's results arrive through it)."""
    loop = QEventLoop()
    timer = QTimer()
    timer.timeout.connect(lambda: loop.quit() if done() else None)
    timer.start(50)
    QTimer.singleShot(timeout_ms, loop.quit)
    loop.exec()
    timer.stop()


def trainer_align(shot: Any) -> QWidget:
    """The trainer tab after "Align photos…" on the demo photos: the per-photo report and the data field."""
    from app.trainer_tab import TrainerTab
    from core.settings import Settings

    photos = _demo_photos(Path(shot.scratch) / "family photos")
    tab = TrainerTab(settings=Settings)
    shot.fill_screen(tab)
    tab.align_panel.align(photos)
    _wait(lambda: not tab.align_panel.controller.is_running())
    return tab


def shots() -> dict[str, Callable[[Any], QWidget]]:
    """The views to grab, by file name (without extension)."""
    return {"trainer_align": trainer_align}

