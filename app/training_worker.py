"""Runs the trainer in a QThread and relays its progress to the GUI thread.

The worker lives in its own thread and talks through signals only; :class:`TrainingController` owns the
thread, lives in the GUI thread and re-emits the worker's signals there (signal-to-signal, queued), so
the UI and tests connect only to the controller (:mod:`app.threads`). Stop sets the trainer's
stop flag, which it checks between batches; the run then writes its checkpoint and ends.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal

from app.threads import ThreadController, ThreadWorker

__all__ = ["TrainingController", "TrainingProgress", "TrainingWorker", "describe_progress"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainingProgress:
    """A snapshot of a running training, sent to the GUI thread.

    Attributes:
        phase: ``"data"`` (reading the crops), ``"teacher"`` (teacher targets), ``"projection"`` (matching
            the start model to the teacher) or ``"train"``.
        done, total: progress of the phase (teacher crops, or batches over the whole run).
        epoch, epochs: current epoch (1-based) and the planned number.
        loss: last batch loss (NaN before training).
        lr: learning rate of the last batch.
        eta_s: estimated seconds left in the phase (None when unknown).
        images_per_s: training throughput.
        batch, batches: the batch within the epoch and the batches per epoch.
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
    batch: int = 0
    batches: int = 0


_PHASE_NAMES = {
    "data": "Reading the training crops…",
    "teacher": "Starting the teacher (SFace)…",
    "projection": "Matching the start model to the teacher…",
}


def describe_progress(p: TrainingProgress) -> str:
    """The phase in words with its time left, e.g. "Epoch 2 of 10 · batch 5 of 12 · about 4m10s left"."""
    from trainer.callbacks import format_duration

    left = "estimating the time left" if p.eta_s is None else f"about {format_duration(p.eta_s)} left"
    if p.phase == "teacher" and p.total:
        return f"Teacher targets: {p.done} of {p.total} crops · {left}"
    if p.phase != "train":
        return _PHASE_NAMES.get(p.phase, "Preparing…")
    text = f"Epoch {p.epoch} of {p.epochs} · batch {p.batch} of {p.batches} · {left}"
    if math.isfinite(p.loss):
        text += f" · loss {p.loss:.4f} · {p.images_per_s:.0f} images/s"
    return text


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

    def __init__(
        self, config: Any, resume: Path | None = None, *, fit_data: bool = False, min_interval_s: float = 0.2
    ) -> None:
        super().__init__()
        self._config = config
        self._fit_data = fit_data
        self._resume = resume
        self._trainer: Any = None
        self._min_interval_s = min_interval_s
        self._last_emit = 0.0
        self._phase_started = time.monotonic()

    def request_stop(self) -> None:
        """Ask the run to end after the current batch (thread-safe)."""
        super().request_stop()
        trainer = self._trainer
        if trainer is not None:
            trainer.request_stop()

    def _phase(self, trainer: Any) -> None:
        self._phase_started = time.monotonic()
        self._send(trainer, force=True)

    def _send(self, trainer: Any, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_emit < self._min_interval_s:
            return
        self._last_emit = now
        s = trainer.state
        if s.phase != "train":
            eta = None
            if s.phase == "teacher" and s.teacher_done and s.teacher_total:
                rate = (now - self._phase_started) / s.teacher_done
                eta = rate * (s.teacher_total - s.teacher_done)
            snapshot = TrainingProgress(
                s.phase, s.teacher_done, s.teacher_total, 0, s.epochs, float("nan"), 0.0, eta, 0.0
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
                s.step,
                s.steps_per_epoch,
            )
        self.progress.emit(snapshot)

    def _epoch_ended(self, trainer: Any) -> None:
        self.epoch_end.emit(dict(trainer.state.history[-1]))
        self._send(trainer, force=True)

    def _fitted(self, config: Any) -> Any:
        """The config with its validation and batch scaled to the data (the scan runs here, off the GUI)."""
        from trainer.config import config_from_dict
        from trainer.recipes import fit_to_data

        data, notes = fit_to_data(config.to_dict())
        for note in notes:
            self.log_message.emit(f"fitted to the data: {note}")
        return config_from_dict(data)

    def work(self) -> None:
        """Train the config; progress, epochs and the log go out as signals, the result as ``finished``."""
        from trainer.loop import Trainer

        handler = _SignalLogHandler(self.log_message.emit)
        logger = logging.getLogger("trainer")
        logger.addHandler(handler)
        if logger.getEffectiveLevel() > logging.INFO:
            logger.setLevel(logging.INFO)
        try:
            config = self._config
            if self._fit_data:
                config = self._fitted(config)
            trainer = Trainer(config, resume=self._resume)
            self._trainer = trainer
            if self.stop_event.is_set():
                trainer.request_stop()
            trainer.add_callback("on_phase", self._phase)
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

    def start(self, config: Any, resume: Path | None = None, *, fit_data: bool = False) -> None:
        """Start training ``config`` (a :class:`trainer.config.TrainConfig`), optionally resuming.

        ``fit_data`` scales its validation hold-out and batch down to its data first
        (:func:`trainer.recipes.fit_to_data`).

        Raises:
            RuntimeError: a training is already running.
        """
        if self.is_running():
            raise RuntimeError("a training is already running: stop it first")
        worker = TrainingWorker(config, resume, fit_data=fit_data)
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
