"""Entry point of the desktop application: ``python main.py [--source PATH_OR_INDEX] [--gallery DIR]``."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.errors import GhostFaceError
from core.runtime import configure_threads

if TYPE_CHECKING:
    from PySide6.QtCore import QCoreApplication

__all__ = ["build_parser", "main"]

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def build_parser() -> argparse.ArgumentParser:
    """The command line of the desktop app."""
    parser = argparse.ArgumentParser(
        prog="ghostface-desktop", description="GhostFace: real-time face recognition."
    )
    parser.add_argument(
        "--source",
        help="camera index (0, 1, ...), video file or image folder; recognition starts at once",
    )
    parser.add_argument("--gallery", help="gallery folder (one sub-folder of photos per person)")
    parser.add_argument("--settings", type=Path, help="settings file to use instead of the default one")
    parser.add_argument(
        "--as-fast-as-possible",
        action="store_true",
        help="process every frame of a video as fast as possible instead of at the video's own pace "
        "(the way `ghostface bench` runs; for measurements)",
    )
    parser.add_argument(
        "--measure",
        type=float,
        metavar="SECONDS",
        help="run for SECONDS after the first frame, then write GUI-thread stall and frame-rate figures "
        "as JSON (to --measure-out or standard output) and quit; a run that ends before its first frame "
        "(a model that cannot load) writes its error instead and exits with status 1",
    )
    parser.add_argument("--measure-out", type=Path, help="where --measure writes its JSON")
    parser.add_argument(
        "--no-plugins",
        action="store_true",
        help="safe mode: load no plugin from the plugins folder or installed packages (the built-ins "
        "and the history still run); the same as GHOSTFACE_SAFE_MODE=1",
    )
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the GUI; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        # Before anything imports numpy when started as ``ghostface-desktop`` (main.py does it earlier).
        configure_threads()
    except GhostFaceError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.no_plugins:
        from core.events import SAFE_MODE_ENV

        os.environ[SAFE_MODE_ENV] = "1"

    from PySide6.QtCore import QTimer

    from app.context import AppContext
    from app.main_window import MainWindow
    from app.themes import apply_theme

    app = _application()
    context = AppContext.load(args.settings, source=args.source, gallery=args.gallery)
    apply_theme(context.settings.ui.theme)
    context.errors.install()
    window = MainWindow(context, autostart=args.source is not None)
    if args.as_fast_as_possible:
        window.controller.realtime = False
    window.show()
    measured: dict[str, Any] = {}
    if args.measure:
        measured = _measure(window, args.measure, args.measure_out)
    # Ctrl+C in the terminal closes the window properly (workers stopped, then waited for); the timer
    # lets the Python interpreter run now and then so that it sees the signal.
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, lambda *_: window.close())
    ticker = QTimer()
    ticker.start(200)
    ticker.timeout.connect(lambda: None)
    try:
        code = app.exec()
    finally:
        ticker.stop()
        window.shutdown()
        context.errors.uninstall()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    # A measurement that never got a frame failed, even though the window closed normally.
    return int(code) or (1 if measured.get("error") else 0)


def _application() -> QCoreApplication:
    """The QApplication (the running one, if any), named, with GhostFace's icon (the theme comes later)."""
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    # The GUI thread needs the GIL for every Python slot; with the default 5 ms switch interval a busy
    # worker can keep it waiting that long per slot, several times a frame. 1 ms keeps the window
    # responsive at the cost of a few more thread switches in the workers.
    sys.setswitchinterval(0.001)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("GhostFace")
    app.setOrganizationName("GhostFace")
    app.setApplicationDisplayName("GhostFace")
    icon = RESOURCES / "icons" / "ghostface.svg"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    return app


def _measure(window: Any, seconds: float, out: Path | None) -> dict[str, Any]:
    """Measure the running window: GUI-thread lateness and frames per second over ``seconds``.

    Returns:
        The measurement's state; its ``"error"`` is set when the run ended before its first frame.
    """
    import time

    from PySide6.QtCore import Qt, QTimer

    from app.diagnostics import StallMonitor

    monitor = StallMonitor(10, window)
    stopper = QTimer(window)
    stopper.setSingleShot(True)
    stopper.setTimerType(Qt.TimerType.PreciseTimer)
    state: dict[str, Any] = {}

    def on_frame(result: Any) -> None:
        # Who was recognized: the bundle's smoke test (packaging/smoke.sh) checks for a known face.
        state.setdefault("names", set()).update(face.person for face in result.faces if face.person)
        if "t0" not in state:
            # Models are loaded and the first frame is shown: the measurement starts now.
            state["t0"] = time.perf_counter()
            # Wall-clock time, so that a launcher can measure launch to first processed frame.
            state["first_frame_unix"] = time.time()
            state["processed0"] = window.controller.worker_processed()
            state["shown0"] = window.video_view.frames_shown
            monitor.start()
            stopper.start(int(seconds * 1000))

    def finish() -> None:
        monitor.stop()
        elapsed = time.perf_counter() - state["t0"]
        stats = window.figures.last_stats
        processed = window.controller.worker_processed() - state["processed0"]
        report = {
            "seconds": round(elapsed, 2),
            "first_frame_unix": state["first_frame_unix"],
            "names_recognised": sorted(state["names"]),
            "source": window.settings.camera.source,
            "realtime": window.controller.realtime,
            "frames_processed": processed,
            "app_fps": round(processed / elapsed, 2),
            "frames_shown": window.video_view.frames_shown - state["shown0"],
            "dropped_by_source": stats.source_dropped if stats else None,
            "dropped_by_display": stats.display_dropped if stats else None,
            "frame_errors": stats.errors if stats else None,
            "mean_stage_ms": stats.mean_timings.as_dict() if stats else None,
            "gui_thread": monitor.summary(50.0),
            "gui_stalls_over_20ms": monitor.stalls[:50],
        }
        _write_report(report, out)
        window.close()

    stopper.timeout.connect(finish)
    window.controller.frame_ready.connect(on_frame)
    _end_if_never_started(window, state, out)
    return state


def _write_report(report: dict[str, Any], out: Path | None) -> None:
    import json

    text = json.dumps(report, indent=2)
    if out is not None:
        out.write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")


def _end_if_never_started(window: Any, state: dict[str, Any], out: Path | None) -> None:
    """``--measure``: a run that ends before its first frame (a model that cannot load) fails at once.

    The window shows the error as the Live view's state and waits for the user; a measurement has no
    user, and would wait for a first frame that never comes until its launcher's timeout.
    """
    from PySide6.QtCore import QTimer

    errors: list[str] = []
    window.controller.error.connect(lambda exc: errors.append(str(exc)))

    def on_stopped() -> None:
        if "t0" in state or "error" in state:
            return  # measured (or closed after measuring), or reported already
        state["error"] = errors[-1] if errors else "the recognition stopped before its first frame"
        log.error("no frame was processed: %s", state["error"].splitlines()[0])
        _write_report({"error": state["error"], "first_frame_unix": None, "frames_processed": 0}, out)
        # Not from inside the controller's own stop: the window stops every worker when it closes.
        QTimer.singleShot(0, window.close)

    window.controller.stopped.connect(on_stopped)


if __name__ == "__main__":
    sys.exit(main())
