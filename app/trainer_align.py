"""The trainer tab's first step: turn photos (a folder, or the gallery) into aligned training crops.

"Align photos…" takes a folder of photos, one sub-folder per person like the gallery; "Use my gallery"
takes the gallery's own folder. Either runs the engine's detector and 5-point alignment
(:func:`trainer.prepare.align_photos`) in a worker thread, with progress, time left and Cancel, and ends
with a per-photo report (aligned, no face, several faces, unreadable). The crops go to a folder under the
user data folder, which then becomes the training data.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.threads import ThreadController, ThreadWorker
from app.user_dirs import display_path

__all__ = ["AlignController", "AlignPanel", "AlignProgress", "AlignWorker", "crops_folder_for"]

log = logging.getLogger(__name__)

_PROBLEM_COLOR = "#f59e0b"


@dataclass(frozen=True, slots=True)
class AlignProgress:
    """One photo done: ``done`` of ``total``, its outcome, and the seconds left (None until known)."""

    done: int
    total: int
    outcome: Any  # trainer.prepare.AlignedPhoto
    eta_s: float | None


def crops_folder_for(source: Path, *, gallery: bool = False) -> Path:
    """Where the crops of ``source`` go: ``<data>/training/crops/<name>``, one folder per photo folder.

    The gallery always has the folder ``gallery``; another folder is named after it, with a short hash of
    its full path so that two folders called "photos" never share their crops.
    """
    from core import paths

    root = paths.data_dir() / "training" / "crops"
    if gallery:
        return root / "gallery"
    slug = re.sub(r"[^\w.-]+", "_", source.name).strip("._") or "photos"
    digest = hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:8]
    return root / f"{slug}-{digest}"


class AlignWorker(ThreadWorker):
    """Aligns one folder of photos with the detector the settings choose, in the thread it was moved to."""

    progress = Signal(object)  # AlignProgress
    finished = Signal(object)  # trainer.prepare.AlignReport

    def __init__(self, source: Path, target: Path, settings: Any) -> None:
        super().__init__()
        self._source, self._target, self._settings = source, target, settings
        self._started = 0.0

    def _report(self, done: int, total: int, outcome: Any) -> None:
        elapsed = time.monotonic() - self._started
        eta = elapsed / done * (total - done) if done else None
        self.progress.emit(AlignProgress(done, total, outcome, eta))

    def work(self) -> None:
        """Build the engine's detector here (never on the GUI thread), align, emit the report."""
        from core.engine import build_detector
        from trainer.prepare import align_photos

        detector = build_detector(self._settings)
        self._started = time.monotonic()
        report = align_photos(
            self._source,
            self._target,
            detector,
            progress=self._report,
            should_stop=self.stop_event.is_set,
            prune=True,  # the crop folder is this photo folder's alone
        )
        self.finished.emit(report)


class AlignController(ThreadController):
    """Owns the alignment thread; lives in the GUI thread. Connect only to *these* signals.

    ``progress(AlignProgress)``, ``finished(AlignReport)``, ``error(Exception)``, ``running_changed(bool)``
    and ``stopped()`` are emitted on the GUI thread.
    """

    progress = Signal(object)
    finished = Signal(object)

    thread_name = "align"
    # A cancelled run still sends its report (what was aligned so far is kept).
    drop_stale_on_stop = False

    def start(self, source: Path, target: Path, settings: Any) -> None:
        """Align the photos of ``source`` into ``target`` with the detector of ``settings``.

        Raises:
            RuntimeError: an alignment is already running.
        """
        if self.is_running():
            raise RuntimeError("photos are already being aligned")
        worker = AlignWorker(source, target, settings)
        self._launch(worker, [(worker.progress, self.progress), (worker.finished, self.finished)])

    def request_stop(self) -> None:
        """Cancel after the current photo; ``finished`` still brings the report of what was done."""
        if self._worker is not None:
            self._worker.request_stop()


class AlignPanel(QGroupBox):
    """The "Training data" step: align a photo folder or the gallery, and show the per-photo report.

    Signals:
        crops_ready(str): the crop folder, once an alignment produced at least one crop.
    """

    crops_ready = Signal(str)

    def __init__(self, settings: Callable[[], Any], parent: QWidget | None = None) -> None:
        super().__init__("1. Training data: your photos", parent)
        self._settings = settings
        self.controller = AlignController(self)
        self.report: Any = None
        self._build()
        c = self.controller
        c.progress.connect(self._on_progress)
        c.finished.connect(self._on_finished)
        c.error.connect(self._on_error)
        c.running_changed.connect(self._update_buttons)
        self._update_buttons()

    def _build(self) -> None:
        help_text = QLabel(
            "Training starts from photos: one folder per person, like the gallery. Each photo's face is "
            "found and aligned exactly as the app does live, and saved as a 112×112 crop."
        )
        help_text.setWordWrap(True)
        self.align_button = QPushButton("Align photos…")
        self.align_button.setToolTip("Choose a folder with one sub-folder of photos per person")
        self.gallery_button = QPushButton("Use my gallery")
        self.gallery_button.setToolTip("Align the photos of the gallery's people")
        self.cancel_button = QPushButton("Cancel")
        self.align_button.clicked.connect(self.choose_folder)
        self.gallery_button.clicked.connect(self.use_gallery)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        for button in (self.align_button, self.gallery_button, self.cancel_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1)
        self.progress_bar.setValue(0)
        self.status_label = QLabel("No photos aligned yet.")
        self.status_label.setWordWrap(True)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Photo", "Result", "Detail"])
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setMinimumHeight(220)  # about seven photos before it scrolls
        self.table.hide()
        layout = QVBoxLayout(self)
        for widget in (help_text, self.progress_bar, self.status_label, self.table):
            if widget is self.progress_bar:
                layout.addLayout(buttons)
            layout.addWidget(widget)

    # -- starting --------------------------------------------------------------------------------------

    def _start_dir(self) -> str:
        pictures = Path.home() / "Pictures"
        return str(pictures if pictures.is_dir() else Path.home())

    @Slot()
    def choose_folder(self) -> None:
        """Ask for a photo folder and align it."""
        folder = QFileDialog.getExistingDirectory(
            self, "Folder of photos, one sub-folder per person", self._start_dir()
        )
        if folder:
            self.align(Path(folder))

    @Slot()
    def use_gallery(self) -> None:
        """Align the gallery's photos."""
        from core.engine import gallery_root

        self.align(gallery_root(self._settings()), gallery=True)

    def align(self, source: Path, *, gallery: bool = False, target: Path | None = None) -> bool:
        """Align the photos of ``source`` (into ``target``, else :func:`crops_folder_for`); False if refused."""
        if self.controller.is_running():
            return False
        if not source.is_dir():
            self.status_label.setText(f"Cannot align: the folder {display_path(source)} does not exist.")
            return False
        self.report = None
        self.table.setRowCount(0)
        self.table.show()
        self.progress_bar.setRange(0, 0)  # busy until the photos are counted
        what = "the gallery's photos" if gallery else f"the photos of {source.name}"
        self.status_label.setText(f"Aligning {what}: starting the face detector…")
        self.controller.start(source, target or crops_folder_for(source, gallery=gallery), self._settings())
        return True

    @Slot()
    def cancel(self) -> None:
        """Stop after the current photo; what was aligned is kept and reported."""
        if self.controller.is_running():
            self.status_label.setText("Cancelling after the current photo…")
            self.controller.request_stop()

    def shutdown(self) -> None:
        """Cancel a running alignment and wait for its thread."""
        self.controller.stop()

    # -- results ---------------------------------------------------------------------------------------

    def _add_row(self, outcome: Any) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        problem = outcome.status.value != "aligned"
        for column, text in enumerate((outcome.photo, outcome.status.value, outcome.detail)):
            item = QTableWidgetItem(text)
            item.setToolTip(text)
            if problem and column == 1:
                item.setForeground(QColor(_PROBLEM_COLOR))  # the photos left out stand out in the list
            self.table.setItem(row, column, item)

    @Slot(object)
    def _on_progress(self, p: AlignProgress) -> None:
        from trainer.callbacks import format_duration

        self.progress_bar.setRange(0, max(1, p.total))
        self.progress_bar.setValue(p.done)
        left = "estimating the time left" if p.eta_s is None else f"about {format_duration(p.eta_s)} left"
        self.status_label.setText(f"Aligning photos: {p.done} of {p.total} · {left}")
        self._add_row(p.outcome)

    @Slot(object)
    def _on_finished(self, report: Any) -> None:
        self.report = report
        self.progress_bar.setRange(0, max(1, report.total))
        self.progress_bar.setValue(len(report.photos))
        if report.aligned:
            text = f"{report.summary()}. The crops are the training data now ({display_path(report.target)})."
        elif report.total:
            text = f"{report.summary()}. No face could be used: nothing to train on."
        else:
            text = f"No photos in {display_path(report.source)}: put one folder of photos per person there."
        self.status_label.setText(text)
        if report.aligned:
            self.crops_ready.emit(str(report.target))

    @Slot(object)
    def _on_error(self, exc: Exception) -> None:
        self.progress_bar.setRange(0, 1)
        self.status_label.setText(f"Aligning failed: {exc}")

    @Slot()
    def _update_buttons(self, *_args: Any) -> None:
        running = self.controller.is_running()
        self.align_button.setEnabled(not running)
        self.gallery_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
