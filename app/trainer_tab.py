"""The trainer tab: fine-tune GhostFaceNetV2 on your own photos without leaving the app.

Step 1 (:mod:`app.trainer_align`) turns photos, a folder with one sub-folder per person or the gallery,
into aligned crops with the engine's own detector, with progress, Cancel and a per-photo report. Step 2
fine-tunes the installed model with the shipped recipe (:mod:`trainer.recipes`: distillation from SFace,
the teacher online on degraded views; the form is :mod:`app.trainer_form`), or any JSON config. Start,
Stop and Resume; each phase is named with its time left; loss and validation plots and the log; "Use this
model" hands the best checkpoint to the main window, which switches its embedder. The form and the last
run are remembered (:mod:`app.trainer_memory`) and the last run is offered for Resume.
Training runs in a worker thread (:mod:`app.training_worker`); closing stops it and keeps the checkpoint.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from app.fit import scrolling_page
from app.trainer_align import AlignPanel
from app.trainer_form import TrainingForm, default_output_dir
from app.trainer_memory import LastRun, TrainerMemory, describe_last_run
from app.training_worker import TrainingController, TrainingProgress, describe_progress
from app.user_dirs import display_path

__all__ = ["PlotWidget", "TrainerTab"]

log = logging.getLogger(__name__)


class PlotWidget(QWidget):
    """A minimal line plot drawn with QPainter: one series, autoscaled, with its last value."""

    def __init__(self, title: str, color: str = "#3b82f6", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.color = QColor(color)
        self.points: list[tuple[float, float]] = []
        self.max_points = 2000
        self.setMinimumSize(220, 140)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def clear(self) -> None:
        """Remove every point and repaint."""
        self.points = []
        self.update()

    def add_point(self, x: float, y: float) -> None:
        """Append a point (a non-finite ``y`` is dropped); past ``max_points`` keep every other one."""
        if not math.isfinite(y):
            return
        self.points.append((float(x), float(y)))
        if len(self.points) > self.max_points:
            # Keep the shape of a long run with half the points.
            self.points = self.points[::2]
        self.update()

    def paintEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Draw the title, the frame, the autoscaled line and its last value, or "no data yet"."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = QRectF(self.rect()).adjusted(40, 22, -10, -20)
        painter.fillRect(self.rect(), self.palette().base())
        painter.setPen(self.palette().text().color())
        painter.drawText(QRectF(0, 2, self.width(), 18), Qt.AlignmentFlag.AlignHCenter, self.title)
        painter.setPen(QPen(self.palette().mid().color(), 1))
        painter.drawRect(rect)
        if not self.points:
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, "no data yet")
            painter.end()
            return
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if x1 == x0:
            x1 = x0 + 1.0
        if y1 - y0 < 1e-9:
            y0, y1 = y0 - 0.5, y1 + 0.5
        painter.setPen(self.palette().text().color())
        painter.drawText(QRectF(0, rect.top() - 6, 38, 14), Qt.AlignmentFlag.AlignRight, f"{y1:.3g}")
        painter.drawText(QRectF(0, rect.bottom() - 8, 38, 14), Qt.AlignmentFlag.AlignRight, f"{y0:.3g}")

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(
                rect.left() + (x - x0) / (x1 - x0) * rect.width(),
                rect.bottom() - (y - y0) / (y1 - y0) * rect.height(),
            )

        path = QPainterPath(to_px(*self.points[0]))
        for point in self.points[1:]:
            path.lineTo(to_px(*point))
        painter.setPen(QPen(self.color, 2))
        painter.drawPath(path)
        if len(self.points) < 50:
            painter.setBrush(self.color)
            for point in self.points:
                painter.drawEllipse(to_px(*point), 2.5, 2.5)
        painter.setPen(self.palette().text().color())
        painter.drawText(
            QRectF(rect.left(), rect.bottom() + 2, rect.width(), 16),
            Qt.AlignmentFlag.AlignRight,
            f"last {ys[-1]:.4g}",
        )
        painter.end()


def _load_settings() -> Any:
    from core.paths import settings_path
    from core.settings import load_settings

    return load_settings(settings_path()).settings


class TrainerTab(QWidget):
    """The trainer tab. Emits ``use_model(str)`` with the checkpoint path when the user adopts a model.

    Args:
        settings: returns the app's settings in use (the detector that aligns photos, the gallery folder);
            by default they are read from the settings file.
        memory: where the form and the last run are remembered (default: ``trainer.ini`` in the config folder).
    """

    use_model = Signal(str)

    def __init__(
        self,
        parent: QWidget | None = None,
        *,
        settings: Callable[[], Any] | None = None,
        memory: TrainerMemory | None = None,
    ) -> None:
        super().__init__(parent)
        self.controller = TrainingController(self)
        self.memory = memory or TrainerMemory()
        self._result: Any = None
        self._batches_seen = 0
        self._planned_epochs = 0

        self.align_panel = AlignPanel(settings or _load_settings)
        self.align_panel.crops_ready.connect(self._on_crops_ready)
        self.form = f = TrainingForm()
        # The form's fields, by the names the tab has always had.
        self.data_edit, self.output_edit, self.init_edit = f.data_edit, f.output_edit, f.init_edit
        self.mode_combo, self.width_combo, self.config_label = f.mode_combo, f.width_combo, f.config_label
        self.epochs_spin, self.lr_spin, self.batch_spin = f.epochs_spin, f.lr_spin, f.batch_spin
        self.options = f.options
        f.run_dir_changed.connect(self._update_buttons)
        f.message.connect(self._append_log)
        self._lay_out(f)
        c = self.controller
        c.progress.connect(self._on_progress)
        c.epoch_end.connect(self._on_epoch_end)
        c.log_message.connect(self._append_log)
        c.finished.connect(self._on_finished)
        c.error.connect(self._on_error)
        c.running_changed.connect(self._update_buttons)
        self._restore()
        self._update_buttons()

    def _lay_out(self, settings_box: QGroupBox) -> None:
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.use_button = QPushButton("Use this model")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.use_button.clicked.connect(self._use_model)
        buttons = QHBoxLayout()
        for button in (self.start_button, self.stop_button, self.resume_button, self.use_button):
            buttons.addWidget(button)

        self.progress_bar = QProgressBar()
        self.progress_bar.setRange(0, 1000)
        self.status_label = QLabel("Ready: align photos, then Start.")
        self.status_label.setWordWrap(True)
        self.loss_plot = PlotWidget("training loss", "#ef4444")
        self.val_plot = PlotWidget("validation accuracy (held-out pairs)", "#10b981")
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.val_plot)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)

        content = QWidget()
        layout = QVBoxLayout(content)
        layout.addWidget(self.align_panel)
        layout.addWidget(settings_box)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addLayout(plots, 1)
        layout.addWidget(self.log_view, 1)
        # The steps are taller than a 768-pixel screen at 150%: the tab scrolls instead of clipping.
        scrolling_page(self, content)

    # -- configuration ----------------------------------------------------------------------------------

    @Slot(str)
    def _on_crops_ready(self, folder: str) -> None:
        self.set_data_folder(folder)
        self._append_log(f"training data: the aligned crops in {display_path(folder)}")
        self.save_form()

    # -- memory -----------------------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        """The run's output folder, as typed in the form."""
        return self.form.run_dir

    def set_data_folder(self, path: str | Path) -> None:
        """Put ``path`` in the training data field."""
        self.form.set_data_folder(path)

    def load_config_file(self, path: str | Path) -> bool:
        """Fill the form from a JSON config; a bad file is reported and changes nothing."""
        return self.form.load_config_file(path)

    def build_config(self) -> Any:
        """The :class:`trainer.config.TrainConfig` the form describes (see :meth:`TrainingForm.build_config`)."""
        return self.form.build_config()

    def use_installed_model_as_start(self) -> None:
        """Fine-tune the shipped GhostFaceNetV2 (see :meth:`TrainingForm.use_installed_model_as_start`)."""
        self.form.use_installed_model_as_start()

    def save_form(self) -> None:
        """Remember the form."""
        self.memory.save_form(self.form.values())

    def _restore(self) -> None:
        """Show the remembered form, and offer the last run (its folder becomes the run folder)."""
        values = self.memory.form()
        if values:
            self.form.restore(values)
        offer = describe_last_run(self.memory.last_run())
        if offer:
            last = self.memory.last_run()
            assert last is not None
            self.output_edit.setText(display_path(last.run_dir))
            self.status_label.setText(offer)

    def _remember_run(self, state: str, result: Any = None) -> None:
        epochs = self._planned_epochs
        if result is None:
            run = LastRun(str(self.run_dir), state, -1, epochs)
        else:
            run = LastRun(
                str(result.output_dir), state, result.epochs_completed, epochs, result.best_accuracy
            )
        self.memory.save_last_run(run)

    # -- control ----------------------------------------------------------------------------------------

    @Slot()
    def start(self) -> None:
        """Start a new training run with the form's settings (in a new run folder if this one holds a run)."""
        if not self.controller.is_running() and (self.run_dir / "last.pt").is_file():
            previous = self.run_dir
            self.output_edit.setText(display_path(default_output_dir()))
            self._append_log(
                f"a new run goes to {display_path(self.run_dir)} (the run in {display_path(previous)} is kept)"
            )
        self._launch(resume=None)

    @Slot()
    def resume(self) -> None:
        """Continue the run in the output folder from its ``last.pt``, with the config it was started with."""
        checkpoint = self.run_dir / "last.pt"
        if not checkpoint.is_file():
            self._append_log(f"nothing to resume: {display_path(checkpoint)} does not exist")
            return
        self._launch(resume=checkpoint)

    def _config_for(self, resume: Path | None) -> Any:
        from trainer.config import load_config

        saved = self.run_dir / "config.json"
        if resume is not None and saved.is_file():
            # The run's own config: the form may have changed since (or the app restarted).
            return load_config(saved)
        return self.build_config()

    def _launch(self, resume: Path | None) -> None:
        from trainer.config import ConfigError

        if self.controller.is_running():
            return
        try:
            config = self._config_for(resume)
        except ConfigError as exc:
            QMessageBox.warning(self, "Cannot start training", str(exc))
            self._append_log(f"not started: {exc}")
            return
        if resume is None:
            self.loss_plot.clear()
            self.val_plot.clear()
            self._batches_seen = 0
        self._result = None
        self._planned_epochs = config.epochs
        self._append_log(
            ("resuming " if resume else "starting ") + f"{config.mode} training in {display_path(config.output_dir)}"
        )
        self.status_label.setText("Starting…")
        self.save_form()
        self._remember_run("running")
        # Only a new run from the built-in recipe is fitted to the data; a config file is taken as written.
        self.controller.start(config, resume, fit_data=resume is None and not self.form.uses_config_file)

    @Slot()
    def stop(self) -> None:
        """Ask the run to stop after its current batch (the GUI stays responsive meanwhile)."""
        if self.controller.is_running():
            self.status_label.setText("Stopping after the current batch…")
            self.controller.request_stop()

    def shutdown(self, timeout_ms: int = 120000) -> bool:
        """Remember the form; stop a running alignment and training and wait (the checkpoint is written first)."""
        self.save_form()
        self.align_panel.shutdown()
        return self.controller.stop(timeout_ms)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Stop a running training (its checkpoint is written first), then let the window close."""
        self.shutdown()
        super().closeEvent(event)

    # -- results ----------------------------------------------------------------------------------------

    @Slot(object)
    def _on_progress(self, p: TrainingProgress) -> None:
        self.status_label.setText(describe_progress(p))
        if p.phase not in ("teacher", "train") or not p.total:
            self.progress_bar.setRange(0, 0)  # busy: this phase has no count
            return
        self.progress_bar.setRange(0, 1000)
        self.progress_bar.setValue(int(round(1000 * p.done / p.total)))
        if p.phase == "train":
            self._batches_seen = p.done
            self.loss_plot.add_point(p.done, p.loss)

    @Slot(object)
    def _on_epoch_end(self, record: dict) -> None:
        if record.get("val_accuracy") is not None:
            self.val_plot.add_point(record["epoch"], record["val_accuracy"])

    @Slot(str)
    def _append_log(self, line: str) -> None:
        self.log_view.appendPlainText(line)

    @Slot(object)
    def _on_finished(self, result: Any) -> None:
        self._result = result
        self.progress_bar.setRange(0, 1000)
        done = f"{result.epochs_completed} of {self._planned_epochs} epochs"
        if result.stopped and result.last_checkpoint is not None:
            text = f"Stopped after {done}. Resume continues from {result.last_checkpoint}."
        elif result.stopped:
            text = "Stopped before the first checkpoint was saved: Start begins again."
        else:
            best = (
                "not validated (no people held out)"
                if result.best_accuracy is None
                else f"best held-out accuracy {result.best_accuracy:.4f}"
            )
            epochs = "1 epoch" if result.epochs_completed == 1 else f"{result.epochs_completed} epochs"
            text = f"Done: {epochs}, {best}."
        self.status_label.setText(text)
        self._append_log(text)
        self._remember_run("stopped" if result.stopped else "finished", result)
        self._update_buttons()

    @Slot(object)
    def _on_error(self, exc: Exception) -> None:
        self.progress_bar.setRange(0, 1000)
        self.status_label.setText(f"Training failed: {exc}")
        self._append_log(f"error: {exc}")
        self._remember_run("failed")
        QMessageBox.warning(self, "Training failed", str(exc))

    def best_checkpoint(self) -> Path | None:
        """The checkpoint "Use this model" hands over: the best validated backbone, else the last one."""
        if self._result is not None and self._result.best_backbone is not None:
            return Path(self._result.best_backbone)
        for name in ("best_backbone.pt", "last_backbone.pt"):
            candidate = self.run_dir / name
            if candidate.is_file():
                return candidate
        return None

    @Slot()
    def _use_model(self) -> None:
        path = self.best_checkpoint()
        if path is not None:
            self._append_log(f"using {display_path(path)} for recognition")
            self.use_model.emit(str(path))

    @Slot()
    def _update_buttons(self, *_args: Any) -> None:
        running = self.controller.is_running()
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(not running and (self.run_dir / "last.pt").is_file())
        self.use_button.setEnabled(not running and self.best_checkpoint() is not None)
