"""Training callbacks: the event registry, early stopping, the log file and the terminal progress bar.

Every event is a documented no-op by default; ``add_callback(event, fn)`` registers more, and
``run_callbacks(event, trainer)`` calls them in order. A callback reads the trainer's ``state`` and may set
``trainer.stop`` (checked between batches) to end the run cleanly.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from trainer.loop import Trainer

__all__ = [
    "EVENTS",
    "Callbacks",
    "EarlyStopping",
    "LogFile",
    "TerminalProgress",
    "format_duration",
]

log = logging.getLogger(__name__)

Callback = Callable[["Trainer"], Any]


def on_train_start(trainer: Trainer) -> None:
    """Data, teacher targets, model and optimizer are ready; ``state.epoch`` is the first epoch to run."""


def on_phase(trainer: Trainer) -> None:
    """The run entered ``state.phase``: ``"data"``, ``"teacher"``, ``"projection"`` or ``"train"``."""


def on_teacher_progress(trainer: Trainer) -> None:
    """Teacher targets are being computed: ``state.teacher_done`` of ``state.teacher_total``."""


def on_epoch_start(trainer: Trainer) -> None:
    """An epoch begins (``state.epoch``, 0-based)."""


def on_batch_end(trainer: Trainer) -> None:
    """A batch was trained: ``state.step``, ``state.loss``, ``state.lr``, ``state.eta_s``."""


def on_validation_end(trainer: Trainer) -> None:
    """Validation ran: ``state.val_accuracy`` (None when there is no validation set)."""


def on_checkpoint_saved(trainer: Trainer) -> None:
    """``state.last_checkpoint`` (and maybe ``state.best_backbone``) was written."""


def on_epoch_end(trainer: Trainer) -> None:
    """An epoch finished; ``state.history[-1]`` holds its record."""


def on_train_end(trainer: Trainer) -> None:
    """The run ended (finished, stopped or early-stopped); ``state.stopped`` says which."""


EVENTS: dict[str, Callback] = {
    fn.__name__: fn
    for fn in (
        on_train_start,
        on_phase,
        on_teacher_progress,
        on_epoch_start,
        on_batch_end,
        on_validation_end,
        on_checkpoint_saved,
        on_epoch_end,
        on_train_end,
    )
}


class Callbacks:
    """Registry of event handlers; an unknown event name is a :class:`KeyError` listing the known ones."""

    def __init__(self) -> None:
        self._handlers: dict[str, list[Callback]] = defaultdict(list)
        for name, fn in EVENTS.items():
            self._handlers[name].append(fn)

    def _check(self, event: str) -> None:
        if event not in EVENTS:
            raise KeyError(f"unknown training event {event!r}; known events: {', '.join(EVENTS)}")

    def add_callback(self, event: str, fn: Callback) -> None:
        """Call ``fn(trainer)`` on ``event``."""
        self._check(event)
        self._handlers[event].append(fn)

    def remove_callback(self, event: str, fn: Callback) -> None:
        """Stop calling ``fn`` on ``event``; a handler that is not registered is ignored."""
        self._check(event)
        if fn in self._handlers[event]:
            self._handlers[event].remove(fn)

    def run_callbacks(self, event: str, trainer: Trainer) -> None:
        """Run every handler of ``event``; an exception in a user handler is logged, not fatal."""
        self._check(event)
        for fn in list(self._handlers[event]):
            try:
                fn(trainer)
            except Exception:
                # A broken progress display must not throw away hours of training.
                log.exception("training callback %r failed on %s", getattr(fn, "__name__", fn), event)


class EarlyStopping:
    """Stops the run after ``patience`` validations without an improvement of at least ``min_delta``."""

    def __init__(self, patience: int, min_delta: float = 0.0) -> None:
        self.patience = patience
        self.min_delta = min_delta

    def __call__(self, trainer: Trainer) -> None:
        """Stop the run once ``patience`` epochs have passed since the best validation accuracy."""
        state = trainer.state
        if state.val_accuracy is None or state.best_epoch is None:
            return
        waited = state.epoch - state.best_epoch
        if waited >= self.patience:
            log.info(
                "early stopping: no validation gain for %d epochs (best %.4f at epoch %d)",
                waited,
                state.best_accuracy,
                state.best_epoch + 1,
            )
            state.early_stopped = True
            trainer.stop = True


def format_duration(seconds: float | None) -> str:
    """``"1h02m"``, ``"3m05s"``, ``"42s"``, or ``"?"``."""
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class LogFile:
    """Writes ``train.log`` in the run folder: config, every ``log_iters`` batches, every epoch."""

    def __init__(self, path: Path, log_iters: int = 10) -> None:
        self.path = Path(path)
        self.log_iters = max(1, log_iters)
        self.handler: logging.Handler | None = None

    def attach(self, callbacks: Callbacks) -> None:
        """Register the handlers that open the log at the start, write batches and epochs, and close it."""
        callbacks.add_callback("on_train_start", self._start)
        callbacks.add_callback("on_batch_end", self._batch)
        callbacks.add_callback("on_epoch_end", self._epoch)
        callbacks.add_callback("on_train_end", self._end)

    def _start(self, trainer: Trainer) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(self.path, encoding="utf-8")
        self.handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self.handler.setLevel(logging.INFO)
        logging.getLogger("trainer").addHandler(self.handler)
        if logging.getLogger("trainer").getEffectiveLevel() > logging.INFO:
            logging.getLogger("trainer").setLevel(logging.INFO)

    def _batch(self, trainer: Trainer) -> None:
        s = trainer.state
        if s.step % self.log_iters == 0 or s.step == s.steps_per_epoch:
            log.info(
                "epoch %d/%d step %d/%d loss %.4f %s lr %.3g %.1f img/s eta %s",
                s.epoch + 1,
                s.epochs,
                s.step,
                s.steps_per_epoch,
                s.loss,
                " ".join(f"{k} {v:.4f}" for k, v in s.loss_parts.items()),
                s.lr,
                s.images_per_s,
                format_duration(s.eta_s),
            )

    def _epoch(self, trainer: Trainer) -> None:
        rec = trainer.state.history[-1]
        log.info(
            "epoch %d done: %s", rec["epoch"], ", ".join(f"{k} {v}" for k, v in rec.items() if k != "epoch")
        )

    def _end(self, trainer: Trainer) -> None:
        if self.handler is not None:
            logging.getLogger("trainer").removeHandler(self.handler)
            self.handler.close()
            self.handler = None


class TerminalProgress:
    r"""A one-line progress bar on a terminal (``\r``-redrawn); plain lines when not a terminal."""

    def __init__(self, stream: IO[str] | None = None, width: int = 28, min_interval_s: float = 0.5) -> None:
        self.stream = stream or sys.stderr
        self.width = width
        self.min_interval_s = min_interval_s
        self._last = 0.0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())

    def attach(self, callbacks: Callbacks) -> None:
        """Register the handlers that draw the teacher's progress, the batches and the epochs."""
        callbacks.add_callback("on_teacher_progress", self._teacher)
        callbacks.add_callback("on_batch_end", self._batch)
        callbacks.add_callback("on_epoch_end", self._epoch)

    def _draw(self, text: str, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self.min_interval_s:
            return
        self._last = now
        if self._tty:
            self.stream.write("\r" + text[:200].ljust(100))
        elif force:
            self.stream.write(text + "\n")
        self.stream.flush()

    def _bar(self, done: int, total: int) -> str:
        frac = done / total if total else 0.0
        filled = int(round(frac * self.width))
        return "[" + "#" * filled + "." * (self.width - filled) + f"] {100 * frac:5.1f}%"

    def _teacher(self, trainer: Trainer) -> None:
        s = trainer.state
        self._draw(
            f"teacher targets {self._bar(s.teacher_done, s.teacher_total)} {s.teacher_done}/{s.teacher_total}"
        )

    def _batch(self, trainer: Trainer) -> None:
        s = trainer.state
        self._draw(
            f"epoch {s.epoch + 1}/{s.epochs} {self._bar(s.step, s.steps_per_epoch)} loss {s.loss:.4f} "
            f"lr {s.lr:.2e} {s.images_per_s:.0f} img/s ETA {format_duration(s.eta_s)}"
        )

    def _epoch(self, trainer: Trainer) -> None:
        rec = trainer.state.history[-1]
        val = rec.get("val_accuracy")
        text = f"epoch {rec['epoch']}/{trainer.state.epochs} loss {rec['loss']:.4f}" + (
            f" val {val:.4f}" if val is not None else ""
        )
        if self._tty:
            self.stream.write("\r" + text.ljust(100) + "\n")
            self.stream.flush()
        else:
            self._draw(text, force=True)
