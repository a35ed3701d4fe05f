"""Drive the real application under an X server and take screenshots of its windows.

Run through ``make_screenshots.sh`` (it starts Xvfb). Each picture is a capture of the X screen
(``import -window root``), so it shows what a user sees: the real window, its dialogs, real video.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
SHARED = Path(os.environ.get("GHOSTFACE_SHARED", REPO.parent / "shared"))
DEMO = SHARED / "data" / "demo"
OUT = Path(__file__).resolve().parent


def _gallery(root: Path) -> Path:
    people = {
        "Barack Obama": ["obama.jpg", "obama2.jpg"],
        "Lin-Manuel Miranda": ["lin-manuel-miranda.png"],
        "Joe Biden": ["biden.jpg"],
        "Alex Lacamoire": ["alex-lacamoire.png"],
    }
    for person, files in people.items():
        (root / person).mkdir(parents=True, exist_ok=True)
        for name in files:
            shutil.copy(DEMO / name, root / person / name)
    return root


def main() -> int:
    """Start the app on the demo clip and gallery, take the screenshots, and return the exit code."""
    home = Path(tempfile.mkdtemp(prefix="ghostface-shots-"))
    os.environ["GHOSTFACE_HOME"] = str(home)
    os.environ.setdefault("GHOSTFACE_MODEL_PATH", str(SHARED / "models"))
    gallery = _gallery(home / "gallery")
    clip = DEMO / "short_hamilton_clip.mp4"

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.main_window import create_window

    app = QApplication(sys.argv[:1])
    app.setApplicationName("GhostFace")
    app.setStyleSheet((REPO / "resources" / "style.qss").read_text(encoding="utf-8"))
    window = create_window(None, source=str(clip), gallery=str(gallery), autostart=True)
    window.setGeometry(0, 0, 1280, 800)
    window.show()

    def grab(name: str) -> None:
        app.processEvents()
        subprocess.run(["import", "-window", "root", str(OUT / name)], check=True)
        sys.stdout.write(f"saved {OUT / name}\n")

    def named() -> bool:
        # Both people of the clip named in one frame is the best picture; after 30 s, one will do.
        result = window.video_view.result
        wanted = 2 if state["waited"] < 300 else 1
        return result is not None and sum(1 for f in result.faces if f.person) >= wanted

    state = {"waited": 0}

    def live() -> None:
        # Wait for a frame with named faces and a filled status bar, then shoot.
        in_view = window.people.names_in_view()
        ready = named() and window._last_stats is not None and window._last_stats.fps > 0
        # Obama is in the audience shots, Lin-Manuel Miranda on stage: wait until the list has both.
        seen_both = {"Barack Obama", "Lin-Manuel Miranda"} <= set(window.people.names_seen())
        ready = ready and (seen_both or state["waited"] > 300)
        if not (
            ready and any(not n.startswith("Unknown") for n in in_view) and window.events_panel.row_count()
        ):
            state["waited"] += 1
            if state["waited"] > 600:
                sys.stderr.write("no named face within 60 s\n")
                app.exit(1)
                return
            QTimer.singleShot(100, live)
            return
        grab("live.png")
        QTimer.singleShot(200, settings)

    def settings() -> None:
        dialog = window.open_settings()
        dialog.resize(560, 420)
        dialog.tabs.setCurrentIndex(1)  # Recognition
        QTimer.singleShot(
            1200, lambda: (grab("settings.png"), dialog.reject(), QTimer.singleShot(300, gallery_tab))
        )

    def gallery_tab() -> None:
        window.tabs.setCurrentWidget(window.gallery_panel)
        QTimer.singleShot(2500, lambda: (grab("gallery.png"), QTimer.singleShot(200, diagnostics)))

    def diagnostics() -> None:
        window.tabs.setCurrentWidget(window.diagnostics)
        QTimer.singleShot(8000, lambda: (grab("diagnostics.png"), QTimer.singleShot(200, no_camera)))

    def no_camera() -> None:
        window.tabs.setCurrentIndex(0)
        window.stop()
        window.video_view.clear()
        window.set_source("0", start=False)
        window.start()
        QTimer.singleShot(800, lambda: (grab("no_camera.png"), window.close()))

    QTimer.singleShot(500, live)
    code = app.exec()
    window.shutdown()
    shutil.rmtree(home, ignore_errors=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
