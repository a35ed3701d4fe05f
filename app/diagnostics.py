"""The Diagnostics tab: where each model really runs, model files and hashes, timings, dropped frames.

It answers "why is it slow, is my GPU used" without a terminal. Model hashes are read through the model
store's hash cache, so refreshing costs a file stat per model, not a re-hash.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from PySide6 import __version__ as PYSIDE_VERSION
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QBrush, QColor, QGuiApplication
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

import core
from app.fit import scrolling_page
from app.recognition_worker import EngineInfo, WorkerStats
from app.unknown_reasons import UnknownReasonsView
from core.environment import RuntimeInfo, RuntimeProbe

__all__ = [
    "DiagnosticsView",
    "StallMonitor",
    "known_devices",
    "runtime_info",
    "start_runtime_probe",
]

log = logging.getLogger(__name__)

_RUNTIME_NAMES = {"opencv-dnn": "OpenCV DNN (ONNX)", "pytorch": "PyTorch"}


# The one probe of this process: the settings dialog's device list and this view share its result.
_probe = RuntimeProbe()


def start_runtime_probe() -> None:
    """Read the versions and devices on a background thread, once.

    Importing torch takes seconds and must not freeze the window.
    """
    _probe.start()


def runtime_info() -> RuntimeInfo | None:
    """The probe's result, or None while it is still running."""
    return _probe.result()


def known_devices() -> list[str] | None:
    """``cpu`` and the CUDA devices torch sees, once the probe has run; None before."""
    info = runtime_info()
    return list(info.devices) if info is not None else None


class StallMonitor(QObject):
    """Measures how responsive the GUI thread is: a precise timer that records its own lateness.

    Every ``interval_ms`` the timer should fire; any delay beyond that is time the GUI thread was
    busy (painting, a slot, a blocking call) and could not react to the user.
    """

    def __init__(self, interval_ms: int = 10, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.interval_ms = interval_ms
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last = 0.0
        self._t0 = 0.0
        self.lateness_ms: list[float] = []
        # (seconds since start, lateness ms) of every tick later than 20 ms: when the stalls happened.
        self.stalls: list[tuple[float, float]] = []

    def start(self) -> None:
        """Clear earlier measurements and start the timer."""
        self.lateness_ms.clear()
        self.stalls.clear()
        self._last = self._t0 = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        """Stop the timer; the measurements so far are kept."""
        self._timer.stop()

    def _tick(self) -> None:
        now = time.perf_counter()
        late = max(0.0, (now - self._last) * 1000.0 - self.interval_ms)
        self.lateness_ms.append(late)
        if late > 20.0:
            self.stalls.append((round(now - self._t0, 3), round(late, 1)))
        self._last = now

    def summary(self, threshold_ms: float = 50.0) -> dict[str, float]:
        """Ticks, the worst and 99th-percentile lateness, and how many ticks were later than ``threshold_ms``."""
        late = sorted(self.lateness_ms)
        if not late:
            return {"ticks": 0, "max_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0, "over_threshold": 0}
        return {
            "ticks": len(late),
            "max_ms": round(late[-1], 2),
            "p99_ms": round(late[min(len(late) - 1, int(0.99 * len(late)))], 2),
            "mean_ms": round(sum(late) / len(late), 3),
            "over_threshold": sum(1 for v in late if v > threshold_ms),
            "threshold_ms": threshold_ms,
        }


# What the diagnostics view lists, with the tooltip that says what each figure means.
_ENGINE_ROWS: tuple[tuple[str, str], ...] = (
    ("Detector", "The face detector the live pipeline built"),
    ("Detector device", "Where the detector really runs (OpenCV models always use the CPU)"),
    ("Embedder", "The embedding model (its id keys the gallery's embedding cache)"),
    (
        "Embedder device",
        "Where the embedder really runs; a CUDA request without CUDA falls back to CPU",
    ),
    (
        "Embedder runtime",
        "What executes the embedder: OpenCV DNN (GhostFaceNetV2 exported to ONNX, the fastest on a CPU) "
        "or PyTorch (CUDA, or when the export failed)",
    ),
    ("Embedding size", "Dimensions of one face embedding"),
    (
        "Similarity threshold",
        "The cosine threshold faces are matched with: the model's calibrated one, or yours "
        "(Settings > Recognition)",
    ),
    ("Gallery", "The gallery folder and how many photo embeddings are in use"),
)
_STATS_ROWS: tuple[tuple[str, str], ...] = (
    ("Frames per second", "Frames the worker processed per second (recent)"),
    ("Frames processed", "Since Start"),
    ("Per stage (ms)", "Recent average per frame"),
    (
        "Dropped by the source",
        "Frames skipped because processing was slower than the video (latest frame wins)",
    ),
    ("Dropped by the display", "Results not drawn because the previous one was still being drawn"),
    ("Frame errors", "Frames whose processing failed (reported, the video went on)"),
    ("Source", "What is being watched"),
)


def _text_of(widget: QWidget | None) -> str:
    return widget.text() if isinstance(widget, QLabel) else ""


class DiagnosticsView(QWidget):
    """Live figures from the recognition worker plus the static facts about models and runtime."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("DiagnosticsView")
        self._labels: dict[str, QLabel] = {}

        engine_box = QGroupBox("Models in use")
        engine_form = QFormLayout(engine_box)
        for key, tip in _ENGINE_ROWS:
            self._add_row(engine_form, key, tip)

        stats_box = QGroupBox("Live figures")
        stats_form = QFormLayout(stats_box)
        for key, tip in _STATS_ROWS:
            self._add_row(stats_form, key, tip)

        runtime_box = QGroupBox("Runtime")
        self.runtime_form = QFormLayout(runtime_box)
        self._runtime_loaded = False

        models_box = self._build_models_box()
        self.unknown_reasons = UnknownReasonsView()
        reasons_box = QGroupBox("Why Unknown (faces in view)")
        QVBoxLayout(reasons_box).addWidget(self.unknown_reasons)

        self.errors = QPlainTextEdit()
        self.errors.setObjectName("ErrorLog")
        self.errors.setReadOnly(True)
        self.errors.setMaximumBlockCount(500)
        self.errors.setPlaceholderText("No errors.")
        errors_box = QGroupBox("Errors")
        QVBoxLayout(errors_box).addWidget(self.errors)

        left = QVBoxLayout()
        left.addWidget(engine_box)
        left.addWidget(stats_box)
        left.addWidget(runtime_box)
        left.addStretch(1)
        right = QVBoxLayout()
        right.addWidget(models_box, 2)
        right.addWidget(reasons_box, 1)
        right.addWidget(errors_box, 1)
        # The page scrolls rather than setting the window's smallest height (a 1366x768 screen at 150 %).
        content = QWidget()
        layout = QHBoxLayout(content)
        layout.addLayout(left, 2)
        layout.addLayout(right, 3)
        scrolling_page(self, content)

    def _build_models_box(self) -> QGroupBox:
        self.models = QTreeWidget()
        self.models.setObjectName("ModelFiles")
        self.models.setHeaderLabels(["Model", "Status", "SHA-256", "File", "Licence"])
        self.models.setRootIsDecorated(False)
        self.models.header().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        refresh = QPushButton("Refresh")
        refresh.setToolTip("Look for the model files again and check their hashes")
        refresh.clicked.connect(self.refresh_models)
        models_box = QGroupBox("Model files")
        models_layout = QVBoxLayout(models_box)
        models_layout.addWidget(self.models)
        copy = QPushButton("Copy report")
        copy.setObjectName("CopyReport")
        copy.setToolTip("Copy everything on this page to the clipboard as plain text (for a bug report)")
        copy.clicked.connect(self.copy_report)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(copy)
        buttons.addWidget(refresh)
        models_layout.addLayout(buttons)
        return models_box

    def _add_row(self, form: QFormLayout, key: str, tip: str) -> None:
        value = QLabel("–")
        value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        value.setToolTip(tip)
        label = QLabel(key)
        label.setToolTip(tip)
        form.addRow(label, value)
        self._labels[key] = value

    def value(self, key: str) -> str:
        """The text shown for ``key`` (for tests)."""
        return self._labels[key].text()

    def follow(self, controller: Any) -> None:
        """Show what the live controller reports (its GUI-thread signals): models, figures, unknown faces."""
        controller.engine_ready.connect(self.set_engine)
        controller.stats_ready.connect(self.set_stats)
        controller.frame_ready.connect(self.unknown_reasons.show_result)

    def set_engine(self, info: EngineInfo) -> None:
        """Show the models, devices, threshold and gallery the engine runs with."""
        set_ = self._labels
        set_["Detector"].setText(info.detector)
        set_["Detector device"].setText(info.detector_device)
        set_["Embedder"].setText(info.embedder)
        set_["Embedder device"].setText(info.embedder_device)
        set_["Embedder runtime"].setText(_RUNTIME_NAMES.get(info.embedder_runtime, info.embedder_runtime))
        set_["Embedding size"].setText(str(info.embedding_dim))
        origin = "the model's own" if info.threshold_source == "model" else "set in Settings"
        set_["Similarity threshold"].setText(f"{info.similarity_threshold:.3f} ({origin})")
        set_["Gallery"].setText(
            f"{info.gallery_dir}: {info.gallery_people} people, {info.gallery_embeddings} embeddings"
        )

    def set_stats(self, stats: WorkerStats) -> None:
        """Show the worker's live figures: rate, per-stage timings, drops, errors and source."""
        t = stats.mean_timings
        set_ = self._labels
        set_["Frames per second"].setText(f"{stats.fps:.1f}")
        set_["Frames processed"].setText(str(stats.processed))
        set_["Per stage (ms)"].setText(
            f"decode {t.decode_ms:.1f}, detect {t.detect_ms:.1f}, align {t.align_ms:.1f}, "
            f"embed {t.embed_ms:.1f}, match {t.match_ms:.1f}, track {t.track_ms:.1f}; total {t.total_ms:.1f}"
        )
        set_["Dropped by the source"].setText(str(stats.source_dropped))
        set_["Dropped by the display"].setText(str(stats.display_dropped))
        set_["Frame errors"].setText(str(stats.errors))
        set_["Source"].setText(stats.source)

    def _fill_runtime(self) -> None:
        info = runtime_info()
        if info is None:
            QTimer.singleShot(300, self._fill_runtime)
            return
        if self._runtime_loaded:
            return
        self._runtime_loaded = True
        for key, value in (*info.rows, ("PySide6", PYSIDE_VERSION)):
            label = QLabel(value)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.runtime_form.addRow(key, label)

    def report_text(self) -> str:
        """Everything the page shows, as plain text: figures, runtime, model files and errors."""
        lines = [f"GhostFace {core.__version__} diagnostics", ""]
        lines += [f"{key}: {label.text()}" for key, label in self._labels.items()]
        lines += ["", "Runtime:"]
        for row in range(self.runtime_form.rowCount()):
            key = self.runtime_form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            value = self.runtime_form.itemAt(row, QFormLayout.ItemRole.FieldRole)
            if key is not None and value is not None:
                lines.append(f"  {_text_of(key.widget())}: {_text_of(value.widget())}")
        lines += ["", "Model files:"]
        for index in range(self.models.topLevelItemCount()):
            item = self.models.topLevelItem(index)
            sha = item.toolTip(2) or item.text(2) or "-"
            lines.append(f"  {item.text(0)}: {item.text(1)}; {item.text(3)}; sha256 {sha}; {item.text(4)}")
        lines += ["", "Errors:", self.errors.toPlainText() or "  none"]
        return "\n".join(lines) + "\n"

    def copy_report(self) -> str:
        """Put :meth:`report_text` on the clipboard (plain text); returns it."""
        text = self.report_text()
        QGuiApplication.clipboard().setText(text)
        return text

    def add_error(self, text: str) -> None:
        """Append a line to the error log."""
        self.errors.appendPlainText(text)

    def refresh_models(self) -> None:
        """List the model files and whether they verify; fill in the runtime facts once they are known."""
        if not self._runtime_loaded:
            info = runtime_info()
            if info is None:
                start_runtime_probe()
                QTimer.singleShot(300, self._fill_runtime)
            else:
                self._fill_runtime()
        self.models.clear()
        try:
            from core.modelstore import default_store

            infos: list[Any] = default_store().describe()
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            self.models.addTopLevelItem(QTreeWidgetItem(["(model store)", f"error: {exc}", "", "", ""]))
            return
        for info in infos:
            status = "verified" if info.verified else (info.error or "found, hash not pinned")
            item = QTreeWidgetItem(
                [info.id, status, (info.sha256 or "")[:8], str(info.path or "not found"), info.licence]
            )
            item.setToolTip(2, info.sha256 or "")
            item.setToolTip(3, str(info.path or ""))
            if info.error:
                item.setForeground(1, QBrush(QColor("#ff7b72")))
            self.models.addTopLevelItem(item)
        for col in range(3):
            self.models.resizeColumnToContents(col)
