"""Runs the trainer in a QThread and relays its progress to the GUI thread.

The worker lives in its own thread and talks through signals only; :class:`TrainingController` owns the
thread, lives in the GUI thread and re-emits the worker's signals there (signal-to-signal, queued), so
the UI and tests connect only to the controller (:mod:`app.threads`). Stop sets the trainer's
stop flag, which it checks between batches; the run then writes its checkpoint and ends.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from app.threads import ThreadController, ThreadWorker

__all__ = ["TrainingController", "TrainingProgress", "TrainingWorker"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainingProgress:
    """A snapshot of a running training, sent to the GUI thread.

    Attributes:
        phase: ``"teacher"`` (computing teacher targets) or ``"train"``.
        done, total: progress of the phase (teacher crops, or batches over the whole run).
        epoch, epochs: current epoch (1-based) and the planned number.
        loss: last batch loss (NaN in the teacher phase).
        lr: learning rate of the last batch.
        eta_s: estimated seconds left (None when unknown).
        images_per_s: training throughput.
    """

    phase: str
    done: int
    total: int
    epoch: int
    epochs: int
    loss: float
    lr: float
    eta_s: float | None
    images_per_s: float


class _SignalLogHandler(logging.Handler):
    def __init__(self, emit: Any) -> None:
        super().__init__(logging.INFO)
        self._emit = emit
        self.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._emit(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise into the trainer
            pass


class TrainingWorker(ThreadWorker):
    """Runs one :class:`trainer.loop.Trainer` in the thread it was moved to."""

    progress = Signal(object)  # TrainingProgress
    epoch_end = Signal(object)  # dict: the epoch's record (epoch, loss, lr, val_accuracy, ...)
    log_message = Signal(str)
    finished = Signal(object)  # trainer.loop.TrainResult

    def __init__(self, config: Any, resume: Path | None = None, *, min_interval_s: float = 0.2) -> None:
        super().__init__()
        self._config = config
        self._resume = resume
        self._trainer: Any = None
        self._min_interval_s = min_interval_s
        self._last_emit = 0.0

    def request_stop(self) -> None:
        """Ask the run to end after the current batch (thread-safe)."""
        super().request_stop()
        trainer = self._trainer
        if trainer is not None:
            trainer.request_stop()

    def _send(self, trainer: Any, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_emit < self._min_interval_s:
            return
        self._last_emit = now
        s = trainer.state
        if s.steps_per_epoch == 0:
            snapshot = TrainingProgress(
                "teacher", s.teacher_done, s.teacher_total, 0, s.epochs, float("nan"), 0.0, None, 0.0
            )
        else:
            snapshot = TrainingProgress(
                "train",
                s.global_step,
                s.total_steps,
                s.epoch + 1,
                s.epochs,
                s.loss,
                s.lr,
                s.eta_s,
                s.images_per_s,
            )
        self.progress.emit(snapshot)

    def _epoch_ended(self, trainer: Any) -> None:
        self.epoch_end.emit(dict(trainer.state.history[-1]))
        self._send(trainer, force=True)

    def work(self) -> None:
        """Train the config; progress, epochs and the log go out as signals, the result as ``finished``."""
        from trainer.loop import Trainer

        handler = _SignalLogHandler(self.log_message.emit)
        logger = logging.getLogger("trainer")
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        try:
            trainer = Trainer(self._config, resume=self._resume)
            self._trainer = trainer
            if self.stop_event.is_set():
                trainer.request_stop()
            trainer.add_callback("on_teacher_progress", self._send)
            trainer.add_callback("on_batch_end", self._send)
            trainer.add_callback("on_epoch_end", self._epoch_ended)
            self.finished.emit(trainer.fit())
        finally:
            logger.removeHandler(handler)


class TrainingController(ThreadController):
    """Owns the training thread; lives in the GUI thread. Connect only to *these* signals.

    ``progress(TrainingProgress)``, ``epoch_end(dict)``, ``log_message(str)``, ``finished(TrainResult)``,
    ``error(Exception)``, ``running_changed(bool)`` and ``stopped()`` (the thread has ended and been
    waited for) are all emitted on the GUI thread.
    """

    progress = Signal(object)
    epoch_end = Signal(object)
    log_message = Signal(str)
    finished = Signal(object)

    thread_name = "training"
    # A stopped run still saves its checkpoint: give it time, and deliver its result.
    stop_timeout_ms = 120_000
    drop_stale_on_stop = False

    def start(self, config: Any, resume: Path | None = None) -> None:
        """Start training ``config`` (a :class:`trainer.config.TrainConfig`), optionally resuming.

        Raises:
            RuntimeError: a training is already running.
        """
        if self.is_running():
            raise RuntimeError("a training is already running: stop it first")
        worker = TrainingWorker(config, resume)
        self._launch(
            worker,
            [
                (worker.progress, self.progress),
                (worker.epoch_end, self.epoch_end),
                (worker.log_message, self.log_message),
                (worker.finished, self.finished),
            ],
        )

    def request_stop(self) -> None:
        """Ask the run to end after its current batch; ``stopped`` follows when it has."""
        if self._worker is not None:
            self._worker.request_stop()
