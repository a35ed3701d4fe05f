"""The status bar's permanent figures: frames per second, time per stage, dropped frames, gallery progress."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Slot
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar

from app.recognition_worker import WorkerStats

__all__ = ["StatusFigures"]


def _show(label: QLabel, text: str) -> None:
    """Set a figure's text; an empty figure is hidden rather than an empty box."""
    label.setText(text)
    label.setVisible(bool(text))


class StatusFigures(QObject):
    """Adds the figures to a status bar and keeps them current (connect the worker's reports here).

    Attributes:
        last_stats: the latest figures received (None before the first).
    """

    def __init__(self, bar: QStatusBar) -> None:
        super().__init__(bar)
        self.last_stats: WorkerStats | None = None
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(160)
        self.progress.setTextVisible(True)
        self.progress.hide()
        self.fps_label = QLabel("– fps")
        self.fps_label.setObjectName("FpsLabel")
        self.fps_label.setToolTip("Frames processed per second")
        self.timings_label = QLabel("")
        self.timings_label.setObjectName("TimingsLabel")
        self.timings_label.setToolTip("Milliseconds per frame spent in each stage (recent average)")
        self.dropped_label = QLabel("")
        self.dropped_label.setObjectName("DroppedLabel")
        self.dropped_label.setToolTip(
            "Frames skipped so that the view stays live: by the source (processing slower than the video) "
            "and by the display"
        )
        for widget in (self.progress, self.timings_label, self.dropped_label, self.fps_label):
            bar.addPermanentWidget(widget)
        # An empty figure is hidden: the status bar draws a box around each one, even an empty one.
        # The size grip is one such box; the window's edges resize it anyway.
        bar.setSizeGripEnabled(False)
        self.timings_label.hide()
        self.dropped_label.hide()

    @Slot(object)
    def follow(self, controller: Any, gallery_controller: Any) -> None:
        """Keep the figures current from the live and gallery controllers' signals (GUI-thread relays)."""
        controller.stats_ready.connect(self.show_stats)
        controller.running_changed.connect(self.show_running)
        gallery_controller.progress.connect(self.show_gallery_progress)

    def show_stats(self, stats: WorkerStats) -> None:
        """The worker's latest figures."""
        self.last_stats = stats
        self.fps_label.setText(f"{stats.fps:.1f} fps")
        t = stats.mean_timings
        stages = (
            ("decode", t.decode_ms), ("detect", t.detect_ms), ("align", t.align_ms),
            ("embed", t.embed_ms), ("match", t.match_ms), ("track", t.track_ms),
        )  # fmt: skip
        # Whole milliseconds from 10 up: the figures stay readable and fit a small screen's status bar.
        text = " · ".join(f"{name} {ms:.0f}" if ms >= 10 else f"{name} {ms:.1f}" for name, ms in stages)
        _show(self.timings_label, f"{text} ms")
        _show(self.dropped_label, f"dropped {stats.source_dropped + stats.display_dropped}")

    @Slot(bool)
    def show_running(self, running: bool) -> None:
        """Nothing runs any more: no rate to show."""
        if not running:
            self.fps_label.setText("– fps")
            _show(self.timings_label, "")

    @Slot(int, int, str)
    def show_gallery_progress(self, done: int, total: int, _item: str = "") -> None:
        """The live worker (re-)embedding its gallery; hidden when done."""
        if done >= total:
            self.progress.hide()
            return
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat("Gallery %v/%m")
        self.progress.show()
