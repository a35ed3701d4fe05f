"""``tools/screenshots.py``: shots collected from other modules, and PNGs rendered at the scale asked."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

from PySide6.QtGui import QImage

REPO = Path(__file__).resolve().parents[1]


def _tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("screenshots_tool", REPO / "tools" / "screenshots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look the module up there
    spec.loader.exec_module(module)
    return module


def test_other_modules_add_shots(tmp_path: Path) -> None:
    (tmp_path / "screenshot_views_people.py").write_text(
        "def shots():\n    return {'person_view': lambda shot: None}\n", encoding="utf-8"
    )
    (tmp_path / "unrelated.py").write_text("raise SystemExit('not a shot module')\n", encoding="utf-8")
    shots = _tool().collect(tmp_path)
    assert {"main_window", "settings_units", "person_view"} <= set(shots)


def test_a_shot_is_rendered_at_each_scale(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "tools/screenshots.py", "--only", "settings_units", "--out", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    small = QImage(str(tmp_path / "settings_units@1x.png"))
    large = QImage(str(tmp_path / "settings_units@1.5x.png"))
    assert not small.isNull() and not large.isNull()
    # The same dialog, drawn with 1.5 times the pixels.
    assert abs(large.width() - 1.5 * small.width()) <= 3 and abs(large.height() - 1.5 * small.height()) <= 3
