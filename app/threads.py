"""The one way this app runs work off the GUI thread: a worker in a ``QThread``, owned by a controller.

The measured Qt traps (docs/architecture.md, "Qt threads") all come from code in the GUI thread being
connected straight to a worker's signals. So a :class:`ThreadWorker` lives in its own thread and only
emits; its :class:`ThreadController` lives in the GUI thread, owns the thread, and relays every worker
signal to a signal of its own (signal to signal: queued across threads, re-emitted on the GUI thread).
The UI and the tests connect only to the controller. A worker is stopped with a
:class:`threading.Event`, then the thread is quit and waited for, and both objects are released only
after the thread has ended (a ``QThread`` collected while running aborts the process).
"""

from __future__ import annotations

import logging
import threading

import shiboken6
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QThread, Signal, SignalInstance, Slot

__all__ = ["ThreadController", "ThreadWorker", "running_threads"]

log = logging.getLogger(__name__)

# Every thread a controller started and has not yet seen end: what "no worker outlives the window"
# is checked against (Python's own thread list cannot see a QThread's end).
_running: set[QThread] = set()


def running_threads() -> list[str]:
    """The names of the worker threads started by controllers and not ended and released yet."""
    # A thread whose C++ object is gone has ended (Qt aborts on deleting a running one).
    _running.difference_update([t for t in _running if not shiboken6.isValid(t)])
    return sorted(t.objectName() for t in _running)


class ThreadWorker(QObject):
    """Runs :meth:`work` once in its own thread; an exception it raises is logged and emitted as ``error``.

    Subclasses implement :meth:`work`, check :attr:`stop_event` between steps, and add the signals
    they report through. ``stopped`` is emitted last, whatever happened.
    """

    error = Signal(object)  # the exception object, with its traceback
    stopped = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.stop_event = threading.Event()

    def request_stop(self) -> None:
        """Ask :meth:`work` to end at its next check; thread-safe, returns at once."""
        self.stop_event.set()

    @Slot()
    def run(self) -> None:
        """The thread's entry point (connected to ``QThread.started``)."""
        try:
            self.work()
        except Exception as exc:  # noqa: BLE001 - reported to the user, never swallowed
            log.exception("%s failed", type(self).__name__)
            self.error.emit(exc)
        finally:
            self.stopped.emit()

    def work(self) -> None:
        """The worker's job, run in its thread."""
        raise NotImplementedError


class ThreadController(QObject):
    """Owns one worker thread at a time; lives in the GUI thread. Connect only to its signals.

    ``error(Exception)``, ``running_changed(bool)`` and ``stopped()`` (the thread has ended and been
    waited for) are emitted on the GUI thread. Subclasses build a worker, call :meth:`_launch` with
    the pairs of (worker signal, controller signal) to relay, and may override :meth:`_on_finished`.
    """

    error = Signal(object)
    running_changed = Signal(bool)
    stopped = Signal()

    # The worker's ``stopped`` comes in through this private relay, so that the slot runs here.
    _worker_stopped = Signal()

    #: The thread's name (shown by debuggers and in leak reports).
    thread_name = "worker"
    #: How long :meth:`stop` waits for the thread by default.
    stop_timeout_ms = 20_000
    #: Drop what the worker queued but the GUI thread has not received yet when the thread is stopped
    #: (stale frames after a restart). Off where its last reports still matter (a training's result).
    drop_stale_on_stop = True

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._thread: QThread | None = None
        self._worker: ThreadWorker | None = None
        self._worker_stopped.connect(self._on_worker_stopped)

    def is_running(self) -> bool:
        """True from :meth:`_launch` until the thread has ended and been released."""
        return self._thread is not None

    def _launch(self, worker: ThreadWorker, relays: list[tuple[SignalInstance, SignalInstance]]) -> None:
        """Move ``worker`` to a new thread, relay its signals, and start it."""
        thread = QThread()
        thread.setObjectName(self.thread_name)
        worker.moveToThread(thread)
        for source, target in relays:
            source.connect(target)
        worker.error.connect(self.error)
        worker.stopped.connect(self._worker_stopped)
        thread.started.connect(worker.run)
        self._thread, self._worker = thread, worker
        _running.add(thread)
        thread.start()
        self.running_changed.emit(True)

    def stop(self, timeout_ms: int | None = None) -> bool:
        """Stop the worker, then wait for its thread. Returns False if it did not end in time."""
        thread, worker = self._thread, self._worker
        if thread is None or worker is None:
            return True
        worker.request_stop()
        thread.quit()
        timeout = self.stop_timeout_ms if timeout_ms is None else timeout_ms
        if not thread.wait(timeout):
            log.error("the %s thread did not stop within %d ms", self.thread_name, timeout)
            return False
        self._release()
        return True

    @Slot()
    def _on_worker_stopped(self) -> None:
        # The worker's run() returned by itself (its job ended, or failed): end the thread here.
        if self._thread is not None:
            self.stop()

    def _release(self) -> None:
        thread, worker = self._thread, self._worker
        if thread is None:
            return
        self._thread, self._worker = None, None
        _running.discard(thread)
        if self.drop_stale_on_stop:
            # What the worker queued before it ended is stale now: nothing arrives after stop() (nor
            # from an old worker after a restart).
            QCoreApplication.removePostedEvents(self, QEvent.Type.MetaCall)
        self._on_finished(worker)
        thread.deleteLater()
        if worker is not None:
            worker.deleteLater()
        self.running_changed.emit(False)
        self.stopped.emit()

    def _on_finished(self, worker: ThreadWorker | None) -> None:
        """Called on the GUI thread once the thread has ended, before ``stopped``; ``worker`` still usable."""
