"""The trainer tab: train or fine-tune GhostFaceNetV2 on a folder of crops without leaving the app.

Pick the data folder, the mode (ArcFace, distillation from SFace, or both), the width, epochs and learning
rate (or load a JSON config); Start, Stop and Resume; follow progress, ETA, live loss and validation plots
and the log; "Use this model" hands the best checkpoint to the main window, which switches its embedder.
Training runs in a worker thread (:mod:`app.training_worker`); closing stops it and keeps the checkpoint.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QPointF, QRectF, Qt, Signal, Slot
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.training_worker import TrainingController, TrainingProgress

__all__ = ["PlotWidget", "TrainerTab"]

log = logging.getLogger(__name__)

MODES = (("ArcFace (labelled folders)", "arcface"), ("Distillation from SFace", "distill"), ("Both", "both"))


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


def _default_output_dir() -> Path:
    from core import paths

    return paths.data_dir() / "training" / time.strftime("run-%Y%m%d-%H%M%S")


class TrainerTab(QWidget):
    """The trainer tab. Emits ``use_model(str)`` with the checkpoint path when the user adopts a model."""

    use_model = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = TrainingController(self)
        self._loaded_config: dict[str, Any] | None = None
        self._result: Any = None
        self._batches_seen = 0

        form = QFormLayout()
        self._add_model_rows(form)
        self._add_schedule_rows(form)
        settings_box = QGroupBox("Training")
        settings_box.setLayout(form)
        self._lay_out(settings_box)
        c = self.controller
        c.progress.connect(self._on_progress)
        c.epoch_end.connect(self._on_epoch_end)
        c.log_message.connect(self._append_log)
        c.finished.connect(self._on_finished)
        c.error.connect(self._on_error)
        c.running_changed.connect(self._update_buttons)
        self._update_buttons()

    def _add_model_rows(self, form: QFormLayout) -> None:
        """Data, run folder, mode, width and the checkpoint to start from."""
        self.data_edit = QLineEdit()
        self.data_edit.setPlaceholderText("folder of aligned 112x112 crops: <person>/<crop>.jpg")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_data)
        row = QHBoxLayout()
        row.addWidget(self.data_edit, 1)
        row.addWidget(browse)
        form.addRow("Data folder", row)

        self.output_edit = QLineEdit(str(_default_output_dir()))
        self.output_edit.textChanged.connect(self._update_buttons)
        form.addRow("Run folder", self.output_edit)

        self.mode_combo = QComboBox()
        for text, value in MODES:
            self.mode_combo.addItem(text, value)
        self.mode_combo.setCurrentIndex(2)
        form.addRow("Mode", self.mode_combo)

        self.width_combo = QComboBox()
        for width in ("1.0", "1.3"):
            self.width_combo.addItem(f"GhostFaceNetV2-{width}", float(width))
        form.addRow("Model width", self.width_combo)

        # Fine-tuning: start from a trained backbone instead of random weights.
        self.init_edit = QLineEdit()
        self.init_edit.setPlaceholderText("empty: random weights (train from scratch)")
        self.init_edit.setToolTip(
            "A backbone checkpoint to fine-tune (its width and stride must match the model above)"
        )
        pick_init = QPushButton("Browse…")
        pick_init.clicked.connect(self._browse_init)
        installed = QPushButton("Installed model")
        installed.setToolTip("Fine-tune the GhostFaceNetV2 that ships with the app")
        installed.clicked.connect(self.use_installed_model_as_start)
        row = QHBoxLayout()
        row.addWidget(self.init_edit, 1)
        row.addWidget(pick_init)
        row.addWidget(installed)
        form.addRow("Start from", row)

    def _add_schedule_rows(self, form: QFormLayout) -> None:
        """Epochs, learning rate, batch size, and a config file instead of the fields."""
        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 1000)
        self.epochs_spin.setValue(10)
        form.addRow("Epochs", self.epochs_spin)

        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(5)
        self.lr_spin.setRange(1e-5, 1.0)
        self.lr_spin.setSingleStep(0.0005)
        self.lr_spin.setValue(0.002)
        form.addRow("Learning rate (AdamW)", self.lr_spin)

        self.batch_spin = QSpinBox()
        self.batch_spin.setRange(2, 4096)
        self.batch_spin.setValue(128)
        form.addRow("Batch size", self.batch_spin)

        self.config_label = QLabel("no config file loaded (the fields above are used)")
        load = QPushButton("Load config…")
        load.clicked.connect(self._browse_config)
        row = QHBoxLayout()
        row.addWidget(self.config_label, 1)
        row.addWidget(load)
        form.addRow("Config", row)

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
        self.status_label = QLabel("idle")
        self.loss_plot = PlotWidget("training loss", "#ef4444")
        self.val_plot = PlotWidget("validation accuracy (held-out pairs)", "#10b981")
        plots = QHBoxLayout()
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.val_plot)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)

        layout = QVBoxLayout(self)
        layout.addWidget(settings_box)
        layout.addLayout(buttons)
        layout.addWidget(self.progress_bar)
        layout.addWidget(self.status_label)
        layout.addLayout(plots, 1)
        layout.addWidget(self.log_view, 1)

    # -- configuration ----------------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        """The run's output folder, as typed in the form."""
        return Path(self.output_edit.text().strip()).expanduser()

    def set_data_folder(self, path: str | Path) -> None:
        """Put ``path`` in the training data field."""
        self.data_edit.setText(str(path))

    def _browse_data(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder of aligned face crops", self.data_edit.text())
        if folder:
            self.set_data_folder(folder)

    def _browse_init(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Backbone checkpoint to fine-tune", self.init_edit.text(), "PyTorch (*.pt *.pth)"
        )
        if path:
            self.init_edit.setText(path)

    def use_installed_model_as_start(self) -> None:
        """Fill "Start from" with the shipped GhostFaceNetV2 (width 1.0, stride 2) and match the width."""
        from core.modelstore import default_store

        path = default_store().locate("ghostfacenetv2")
        if path is None:
            QMessageBox.warning(self, "No installed model", "No GhostFaceNetV2 checkpoint is installed.")
            return
        self.init_edit.setText(str(path))
        self.width_combo.setCurrentIndex(max(0, self.width_combo.findData(1.0)))

    def _browse_config(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Training config", "", "JSON (*.json)")
        if path:
            self.load_config_file(path)

    def load_config_file(self, path: str | Path) -> bool:
        """Fill the form from a JSON config; a bad file is reported and changes nothing."""
        from trainer.config import ConfigError, load_config

        try:
            config = load_config(path)
        except ConfigError as exc:
            QMessageBox.warning(self, "Cannot use this config", str(exc))
            self._append_log(f"config not loaded: {exc}")
            return False
        self._loaded_config = config.to_dict()
        self.data_edit.setText(str(config.data_path[0]))
        self.output_edit.setText(config.output_dir)
        self.mode_combo.setCurrentIndex([v for _t, v in MODES].index(config.mode))
        index = self.width_combo.findData(config.backbone.width)
        if index < 0:
            self.width_combo.addItem(f"GhostFaceNetV2-{config.backbone.width}", config.backbone.width)
            index = self.width_combo.count() - 1
        self.width_combo.setCurrentIndex(index)
        self.epochs_spin.setValue(config.epochs)
        self.lr_spin.setValue(config.optimizer.base_lr)
        self.batch_spin.setValue(config.batch_size)
        self.init_edit.setText(config.init_backbone or "")
        self.config_label.setText(str(path))
        return True

    def build_config(self) -> Any:
        """The :class:`trainer.config.TrainConfig` the form describes (over a loaded config, if any).

        Raises:
            trainer.config.ConfigError: the form is incomplete or invalid.
        """
        from trainer.config import ConfigError, config_from_dict

        base: dict[str, Any] = dict(self._loaded_config or {})
        data = self.data_edit.text().strip()
        if not data:
            raise ConfigError("choose the data folder first")
        paths = list(base.get("data_path") or [])
        if not paths or paths[0] != data:
            paths = [data]
        base["data_path"] = paths
        base["output_dir"] = str(self.run_dir)
        base["mode"] = self.mode_combo.currentData()
        base["epochs"] = self.epochs_spin.value()
        base["batch_size"] = self.batch_spin.value()
        backbone = dict(base.get("backbone") or {})
        backbone["width"] = self.width_combo.currentData()
        base["backbone"] = backbone
        base["init_backbone"] = self.init_edit.text().strip() or None
        optimizer = dict(base.get("optimizer") or {"name": "adamw"})
        name = optimizer.get("name", "adamw")
        section = dict(optimizer.get(name) or {})
        section["base_lr"] = self.lr_spin.value()
        optimizer[name] = section
        base["optimizer"] = optimizer
        return config_from_dict(base)

    # -- control ----------------------------------------------------------------------------------------

    @Slot()
    def start(self) -> None:
        """Start a new training run with the form's settings."""
        self._launch(resume=None)

    @Slot()
    def resume(self) -> None:
        """Continue the run in the output folder from its ``last.pt``, if there is one."""
        checkpoint = self.run_dir / "last.pt"
        if not checkpoint.is_file():
            self._append_log(f"nothing to resume: {checkpoint} does not exist")
            return
        self._launch(resume=checkpoint)

    def _launch(self, resume: Path | None) -> None:
        from trainer.config import ConfigError

        if self.controller.is_running():
            return
        try:
            config = self.build_config()
        except ConfigError as exc:
            QMessageBox.warning(self, "Cannot start training", str(exc))
            self._append_log(f"not started: {exc}")
            return
        if resume is None:
            self.loss_plot.clear()
            self.val_plot.clear()
            self._batches_seen = 0
        self._result = None
        self._append_log(
            ("resuming " if resume else "starting ") + f"{config.mode} training in {config.output_dir}"
        )
        self.status_label.setText("starting…")
        self.controller.start(config, resume)

    @Slot()
    def stop(self) -> None:
        """Ask the run to stop after its current batch (the GUI stays responsive meanwhile)."""
        if self.controller.is_running():
            self.status_label.setText("stopping after the current batch…")
            self.controller.request_stop()

    def shutdown(self, timeout_ms: int = 120000) -> bool:
        """Stop a running training and wait for it (its checkpoint is written first)."""
        return self.controller.stop(timeout_ms)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        """Stop a running training (its checkpoint is written first), then let the window close."""
        self.shutdown()
        super().closeEvent(event)

    # -- results ----------------------------------------------------------------------------------------

    @Slot(object)
    def _on_progress(self, p: TrainingProgress) -> None:
        from trainer.callbacks import format_duration

        frac = p.done / p.total if p.total else 0.0
        self.progress_bar.setValue(int(round(1000 * frac)))
        if p.phase == "teacher":
            self.status_label.setText(f"teacher targets: {p.done}/{p.total}")
            return
        self.status_label.setText(
            f"epoch {p.epoch}/{p.epochs} · batch {p.done}/{p.total} · loss {p.loss:.4f} · lr {p.lr:.2e} · "
            f"{p.images_per_s:.0f} img/s · ETA {format_duration(p.eta_s)}"
        )
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
        if result.stopped:
            text = f"stopped after {result.epochs_completed} epochs; Resume continues from {result.last_checkpoint}"
        else:
            best = "n/a" if result.best_accuracy is None else f"{result.best_accuracy:.4f}"
            text = f"done: {result.epochs_completed} epochs, best validation accuracy {best}"
        self.status_label.setText(text)
        self._append_log(text)
        self._update_buttons()

    @Slot(object)
    def _on_error(self, exc: Exception) -> None:
        self.status_label.setText("training failed")
        self._append_log(f"error: {exc}")
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
            self._append_log(f"using {path} for recognition")
            self.use_model.emit(str(path))

    @Slot()
    def _update_buttons(self, *_args: Any) -> None:
        running = self.controller.is_running()
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        self.resume_button.setEnabled(not running and (self.run_dir / "last.pt").is_file())
        self.use_button.setEnabled(not running and self.best_checkpoint() is not None)
