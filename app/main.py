"""Entry point of the desktop application: ``python main.py [--source PATH_OR_INDEX] [--gallery DIR]``."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["build_parser", "main"]

RESOURCES = Path(__file__).resolve().parents[1] / "resources"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ghostface-desktop", description="GhostFace: real-time face recognition."
    )
    parser.add_argument(
        "--source",
        help="camera index (0, 1, ...), video file or image folder; recognition starts at once",
    )
    parser.add_argument("--gallery", help="gallery folder (one sub-folder of photos per person)")
    parser.add_argument("--settings", type=Path, help="settings file to use instead of the default one")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Start the GUI; returns the exit code."""
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QIcon
    from PySide6.QtWidgets import QApplication

    from app.main_window import create_window

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("GhostFace")
    app.setOrganizationName("GhostFace")
    app.setApplicationDisplayName("GhostFace")
    icon = RESOURCES / "icons" / "ghostface.svg"
    if icon.exists():
        app.setWindowIcon(QIcon(str(icon)))
    style = RESOURCES / "style.qss"
    if style.exists():
        app.setStyleSheet(style.read_text(encoding="utf-8"))

    window = create_window(
        args.settings, source=args.source, gallery=args.gallery, autostart=args.source is not None
    )
    window.show()
    # Ctrl+C in the terminal closes the window properly (workers stopped, then waited for); the timer
    # lets the Python interpreter run now and then so that it sees the signal.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    signal.signal(signal.SIGTERM, lambda *_: window.close())
    ticker = QTimer()
    ticker.start(200)
    ticker.timeout.connect(lambda: None)
    code = app.exec()
    window.shutdown()
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
